package endpoint

import (
	"sync"

	"github.com/havenproto/haven/internal/secure"
)

// sealChunk is how many packets one crypto task encrypts.
const sealChunk = 16

// cryptoTask is a chunk of one session's packets to encrypt (jobs) or
// to decrypt (opens).
type cryptoTask struct {
	jobs  []secure.SealJob
	opens []secure.OpenJob
	wg    *sync.WaitGroup
}

// cryptoQueue feeds the process-wide crypto workers, which let one
// session's packets be encrypted on several cores (issue #5). They only
// ever run secure.SealJob.Seal on chunks handed to them by sealJobs, never
// block otherwise, and, like the run workers (runq.go), are started on
// demand, at most maxWorkers, and exit when the queue is empty.
type cryptoQueue struct {
	// mu guards q, head and workers.
	mu      sync.Mutex
	q       []cryptoTask
	head    int
	workers int
}

var cryptoq cryptoQueue

func (c *cryptoQueue) push(t cryptoTask) {
	c.mu.Lock()
	c.q = append(c.q, t)
	spawn := c.workers < maxWorkers
	if spawn {
		c.workers++
	}
	c.mu.Unlock()
	if spawn {
		go cryptoWorker()
	}
}

// pop takes the next task, or retires the calling worker (ok false).
func (c *cryptoQueue) pop() (t cryptoTask, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head == len(c.q) {
		c.workers--
		return cryptoTask{}, false
	}
	t = c.q[c.head]
	c.q[c.head] = cryptoTask{}
	c.head++
	if c.head == len(c.q) {
		c.q, c.head = c.q[:0], 0
	}
	return t, true
}

func cryptoWorker() {
	for {
		t, ok := cryptoq.pop()
		if !ok {
			return
		}
		for i := range t.jobs {
			t.jobs[i].Seal()
		}
		for i := range t.opens {
			t.opens[i].Decrypt()
		}
		t.wg.Done()
	}
}

// sealJobs encrypts a run's packets in place. A short batch is sealed
// here; a longer one is split into chunks, all but the first handed to
// the crypto workers, and sealJobs returns when every chunk is done, so
// the packets are then written in packet-number order.
func (s *Session) sealJobs(jobs []secure.SealJob, wg *sync.WaitGroup) {
	if len(jobs) < 2*sealChunk || maxWorkers == 1 {
		for i := range jobs {
			jobs[i].Seal()
		}
		return
	}
	for start := sealChunk; start < len(jobs); start += sealChunk {
		wg.Add(1)
		cryptoq.push(cryptoTask{jobs: jobs[start:min(start+sealChunk, len(jobs))], wg: wg})
	}
	for i := 0; i < sealChunk; i++ {
		jobs[i].Seal()
	}
	wg.Wait()
}

// openChunk is how many received packets one crypto task decrypts.
const openChunk = 4

// decryptJobs decrypts a batch of prepared received packets: a short
// batch here, a longer one in chunks, all but the first handed to the
// crypto workers, like sealJobs. It returns when every packet is done.
func decryptJobs(jobs []secure.OpenJob, wg *sync.WaitGroup) {
	if len(jobs) < 2*openChunk || maxWorkers == 1 {
		for i := range jobs {
			jobs[i].Decrypt()
		}
		return
	}
	for start := openChunk; start < len(jobs); start += openChunk {
		wg.Add(1)
		cryptoq.push(cryptoTask{opens: jobs[start:min(start+openChunk, len(jobs))], wg: wg})
	}
	for i := 0; i < openChunk; i++ {
		jobs[i].Decrypt()
	}
	wg.Wait()
}
