package endpoint

import (
	"sync"
	"testing"

	"github.com/havenproto/haven/internal/secure"
)

// TestCryptoTakeBack: a batch's owner takes back only its own tasks that
// no worker has taken, the last queued first, and leaves the others'.
func TestCryptoTakeBack(t *testing.T) {
	var q cryptoQueue
	var mine, theirs sync.WaitGroup
	jobs := make([]secure.SealJob, 4)
	q.q = []cryptoTask{
		{jobs: jobs[0:1], wg: &theirs},
		{jobs: jobs[1:2], wg: &mine},
		{jobs: jobs[2:3], wg: &theirs},
		{jobs: jobs[3:4], wg: &mine},
	}
	if got, ok := q.pop(); !ok || got.wg != &theirs { // a worker took the first
		t.Fatalf("pop: %v %v", ok, got.wg)
	}
	var took []*secure.SealJob
	for {
		task, ok := q.takeBack(&mine)
		if !ok {
			break
		}
		if task.wg != &mine {
			t.Fatal("took back another batch's task")
		}
		took = append(took, &task.jobs[0])
	}
	if len(took) != 2 || took[0] != &jobs[3] || took[1] != &jobs[1] {
		t.Fatalf("took back %d tasks, want jobs 3 then 1", len(took))
	}
	left, ok := q.pop()
	if !ok || left.wg != &theirs || &left.jobs[0] != &jobs[2] {
		t.Fatal("the other batch's queued task is gone")
	}
	if _, ok := q.takeBack(&theirs); ok {
		t.Fatal("took back from an empty queue")
	}
	if q.head != 0 || len(q.q) != 0 {
		t.Fatalf("queue not reset when empty: head %d len %d", q.head, len(q.q))
	}
}
