package endpoint

import (
	"sync"

	"github.com/havenproto/haven/internal/secure"
)

// sealChunk is how many packets one crypto task encrypts.
const sealChunk = 16

// cryptoTask is a chunk of one session's packets to encrypt.
type cryptoTask struct {
	jobs []secure.SealJob
	wg   *sync.WaitGroup
}

// startCrypto starts the crypto workers, which let one session's packets
// be encrypted on several cores (issue #5). They only ever run
// secure.SealJob.Seal on chunks handed to them by sealJobs.
func (ep *Endpoint) startCrypto(n int) {
	ep.cryptoq = make(chan cryptoTask, 64)
	for i := 0; i < n; i++ {
		ep.wg.Add(1)
		go func() {
			defer ep.wg.Done()
			for t := range ep.cryptoq {
				for i := range t.jobs {
					t.jobs[i].Seal()
				}
				t.wg.Done()
			}
		}()
	}
}

// sealJobs encrypts a run's packets in place. A short batch is sealed
// here; a longer one is split into chunks, all but the first handed to
// the crypto workers, and sealJobs returns when every chunk is done, so
// the packets are then written in packet-number order.
func (s *Session) sealJobs(jobs []secure.SealJob, wg *sync.WaitGroup) {
	if len(jobs) < 2*sealChunk || cap(s.ep.cryptoq) == 0 {
		for i := range jobs {
			jobs[i].Seal()
		}
		return
	}
	for start := sealChunk; start < len(jobs); start += sealChunk {
		wg.Add(1)
		s.ep.cryptoq <- cryptoTask{jobs: jobs[start:min(start+sealChunk, len(jobs))], wg: wg}
	}
	for i := 0; i < sealChunk; i++ {
		jobs[i].Seal()
	}
	wg.Wait()
}
