package testutil

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for one writer (a process's stderr, a
// terminal, a logger) and a test that reads it meanwhile.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
