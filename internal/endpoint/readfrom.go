package endpoint

import "io"

// readFromChunk is the most ReadFrom offers the source's Read at a time:
// a quarter of the default send buffer, so that the engine sends the
// first bytes while the source fills the next ones.
const readFromChunk = 256 << 10

// ReadFrom copies r into the stream until r returns io.EOF (not an error
// here) or fails, as io.ReaderFrom asks. r reads straight into the
// stream's send buffer (mux.Session.ReserveWrite), outside the session's
// lock: the copy through an intermediate buffer that io.Copy makes for a
// Write is gone, which is what `haven forward` and every proxy between a
// TCP connection and a Haven stream pay per byte.
//
// It blocks while the send buffer is full, honouring the write deadline;
// a Read of r that blocks is r's to end. Bytes r returned after the
// stream was closed are dropped with the error. As with io.Copy through a
// buffer, which reads before it writes, a source at its end is no error
// even when the stream takes no more (an echo server's io.Copy(c, c)
// whose client closed after the last byte). The count is the bytes
// queued.
func (st *Stream) ReadFrom(r io.Reader) (int64, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	var total int64
	for {
		if err := st.writeCheck(); err != nil {
			return total, err
		}
		st.s.mu.Lock()
		room, err := st.s.m.ReserveWrite(st.id, readFromChunk)
		var writable chan struct{}
		if err == nil && len(room) == 0 {
			writable = waitCh(&st.writable) // about to block
		}
		st.s.mu.Unlock()
		if err != nil {
			return total, st.endedErr(r, err)
		}
		if len(room) == 0 {
			if err := st.waitWritable(writable); err != nil {
				return total, err
			}
			continue
		}
		n, rerr := r.Read(room) // the reservation is ours until CommitWrite
		n = min(max(n, 0), len(room))
		st.s.mu.Lock()
		queued, err := st.s.m.CommitWrite(st.id, n)
		st.s.mu.Unlock()
		total += int64(queued)
		if queued > 0 {
			st.s.runNow(queued)
		}
		if n == 0 {
			// Nothing to queue: as io.Copy writes nothing at its
			// source's end, a stream closed meanwhile (the peer stopped
			// reading after it had everything) is no error here.
			err = nil
		}
		switch {
		case st.isClosed.Load() && queued < n:
			return total, ErrClosed // closed while r read
		case err != nil:
			return total, st.mapErr(err)
		case queued < n:
			return total, ErrClosed
		case rerr == io.EOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// endedErr is ReadFrom's answer when the stream takes no more (err): as
// io.Copy reads its source before it writes, a source that turns out to
// be at its end is no error, and one that has data gets err.
func (st *Stream) endedErr(r io.Reader, err error) error {
	var b [1]byte
	for {
		n, rerr := r.Read(b[:])
		switch {
		case n > 0:
			return st.mapErr(err)
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return rerr
		}
	}
}
