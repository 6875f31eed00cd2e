package noise

import (
	"sync"
	"testing"
)

// queued returns a task set up as spawn leaves it, but with no helper: it
// stands for a helper that has not been scheduled yet.
func queued(t *testing.T, kp *KeyPair, pub *[DHLen]byte) *dhTask {
	t.Helper()
	task := dhTasks.Get().(*dhTask)
	if kp == nil {
		task.gen = true
	} else {
		task.kp, task.pub = *kp, *pub
	}
	task.wg.Add(1)
	task.state.Store(taskQueued)
	return task
}

func TestTaskFinishRunsUnclaimed(t *testing.T) {
	var a, b KeyPair
	if err := a.generate(); err != nil {
		t.Fatal(err)
	}
	if err := b.generate(); err != nil {
		t.Fatal(err)
	}
	task := queued(t, &a, &b.pub)
	task.finish() // no helper started: the caller runs it
	var want [DHLen]byte
	if err := dh(&want, &b, &a.pub); err != nil {
		t.Fatal(err)
	}
	if task.err != nil || task.out != want {
		t.Fatalf("finish: out %x err %v, want %x", task.out, task.err, want)
	}
	// The helper that finds the task later must not run it again (a
	// second wg.Done would panic).
	if task.claim() {
		t.Fatal("a claimed task was claimed again")
	}
	release(task)
	// A stale pointer to a pooled task cannot be claimed either.
	if task.claim() {
		t.Fatal("an idle task was claimed")
	}
}

func TestTaskCancelUnclaimed(t *testing.T) {
	task := queued(t, nil, nil)
	task.cancel()
	if task.kp.valid() {
		t.Fatal("cancel ran the task")
	}
	if task.claim() {
		t.Fatal("a cancelled task was claimed")
	}
	task.wg.Wait() // balanced: returns at once
	release(task)
}

// TestAheadClaimConcurrent races helpers against their handshakes taking
// tasks back, with tasks recycled through the pool meanwhile, as many
// dials at once do: every key pair taken must be whole and every task
// run once (run -race).
func TestAheadClaimConcurrent(t *testing.T) {
	const workers, rounds = 4, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				a := GenerateAhead()
				if a.t == nil {
					continue // one P: nothing to overlap
				}
				if (i+w)%3 == 0 {
					a.Discard()
					continue
				}
				var kp KeyPair
				var es aheadDH
				if err := a.take(&kp, &es); err != nil {
					errs <- err
					return
				}
				var pub [DHLen]byte
				x25519Base(&pub, &kp.priv)
				if !kp.valid() || pub != kp.pub || es.ok {
					errs <- errBadAhead
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var errBadAhead = errorString("a key pair generated ahead does not match its private key")

type errorString string

func (e errorString) Error() string { return string(e) }
