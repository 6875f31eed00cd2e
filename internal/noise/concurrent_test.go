package noise

import (
	"bytes"
	"sync"
	"testing"
)

// TestEncryptAtWithConcurrent: sealing from many goroutines with their own
// nonce buffers gives exactly what EncryptAt gives, under -race too.
func TestEncryptAtWithConcurrent(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeyLen)
	cs := newCipherState(DefaultSuite.cipher)
	if err := cs.InitializeKey(key); err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, 64)
	for i := range want {
		want[i], _ = cs.EncryptAt(nil, uint64(i), []byte("ad"), []byte("message"))
	}
	got := make([][]byte, 64)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nb NonceBuf
			for i := g; i < 64; i += 4 {
				got[i], _ = cs.EncryptAtWith(&nb, nil, uint64(i), []byte("ad"), []byte("message"))
			}
		}()
	}
	wg.Wait()
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
}
