package secure

import (
	"bytes"
	"sync"
	"testing"
)

// TestOpenJobsConcurrent: a batch opened the way the endpoint opens a long
// one (PrepareOpen for every packet, Decrypt on several goroutines at
// once, FinishOpen in order) gives what Open gives one by one: every
// genuine packet once, a duplicate within the batch dropped as a replay,
// a tampered one dropped as unauthentic, and nothing marked seen that did
// not authenticate.
func TestOpenJobsConcurrent(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, Limits{}, at(0))
	var batch [][]byte
	var want []string
	for i := range 40 {
		msg := string(rune('a'+i%26)) + "-packet"
		pkt, _ := seal(t, ti, msg, at(0))
		batch = append(batch, pkt)
		want = append(want, msg)
	}
	batch = append(batch, bytes.Clone(batch[3])) // a duplicate in the same batch
	bad := bytes.Clone(batch[7])
	bad[len(bad)-1] ^= 1
	batch = append(batch, bad) // 7 again, tampered: unauthentic, and 7 stays unseen by it

	jobs := make([]OpenJob, len(batch))
	for i, pkt := range batch {
		if err := tr.PrepareOpen(pkt, at(0), &jobs[i]); err != nil {
			t.Fatalf("PrepareOpen %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	for c := 0; c < len(jobs); c += 4 {
		wg.Add(1)
		go func(js []OpenJob) {
			defer wg.Done()
			for i := range js {
				js[i].Decrypt()
			}
		}(jobs[c:min(c+4, len(jobs))])
	}
	wg.Wait()
	for i := range jobs {
		plain, pn, err := tr.FinishOpen(&jobs[i], at(0))
		switch {
		case i < 40:
			if err != nil || pn != uint64(i) || !bytes.Contains(plain, []byte(want[i])) {
				t.Fatalf("packet %d: pn %d, %v", i, pn, err)
			}
		case i == 40:
			if err != ErrReplay {
				t.Fatalf("duplicate in the batch: %v, want ErrReplay", err)
			}
		default:
			if err != ErrAuth {
				t.Fatalf("tampered packet: %v, want ErrAuth", err)
			}
		}
	}
	// The zero job (a packet PrepareOpen refused) fails without touching
	// anything.
	var zero OpenJob
	zero.Decrypt()
	if _, _, err := tr.FinishOpen(&zero, at(0)); err != ErrAuth {
		t.Fatalf("zero job: %v", err)
	}
}

// TestOpenJobRetiredKeys: a job whose key set was retired between
// PrepareOpen and FinishOpen (a rekey confirmed by an earlier packet of
// the same batch retires the previous keys) is dropped, never accepted
// into another set's window.
func TestOpenJobRetiredKeys(t *testing.T) {
	p := newPair(t, ResponderConfig{})
	ti, tr := p.transports(t, Limits{}, at(0))
	old, _ := seal(t, ti, "old keys", at(0))
	var job OpenJob
	if err := tr.PrepareOpen(old, at(0), &job); err != nil {
		t.Fatal(err)
	}
	job.Decrypt()
	tr.Close() // every key set retired
	if _, _, err := tr.FinishOpen(&job, at(0)); err != ErrNoKeys {
		t.Fatalf("job of retired keys: %v, want ErrNoKeys", err)
	}
}
