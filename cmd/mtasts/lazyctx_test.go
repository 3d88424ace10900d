package main

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A lazyTimeout ends as context.WithTimeout's context does, makes no timer
// until asked for Done or Err, and ends canceled once stopped.
func TestLazyTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		parent := context.WithValue(context.Background(), key{}, "v")
		l := newLazyTimeout(parent, time.Second)
		if d, ok := l.Deadline(); !ok || !d.Equal(time.Now().Add(time.Second)) {
			t.Errorf("Deadline = %v, %v", d, ok)
		}
		if l.Value(key{}) != "v" {
			t.Error("Value does not reach the parent's")
		}
		if l.ctx != nil {
			t.Error("a timer was made before Done or Err")
		}
		select {
		case <-l.Done():
			t.Fatal("done at once")
		default:
		}
		time.Sleep(time.Second)
		<-l.Done()
		if !errors.Is(l.Err(), context.DeadlineExceeded) {
			t.Errorf("Err = %v, want DeadlineExceeded", l.Err())
		}
		l.stop()

		stopped := newLazyTimeout(parent, time.Hour)
		stopped.stop()
		<-stopped.Done()
		if !errors.Is(stopped.Err(), context.Canceled) {
			t.Errorf("Err after stop = %v, want Canceled", stopped.Err())
		}

		short, cancel := context.WithTimeout(parent, time.Minute)
		defer cancel()
		if d, _ := newLazyTimeout(short, time.Hour).Deadline(); !d.Equal(time.Now().Add(time.Minute)) {
			t.Errorf("Deadline under a nearer parent deadline = %v", d)
		}
	})
}
