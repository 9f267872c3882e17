package proc

import "sync"

// subscriber queues events without bound so that publishing never blocks.
type subscriber struct {
	ch     chan Event
	mu     sync.Mutex
	q      []Event
	ended  bool // no more events will come
	wake   chan struct{}
	cancel chan struct{}
	once   sync.Once
}

// Subscribe returns a channel of every event from now on, in order, and a
// function that cancels the subscription. Publishing never waits for the
// reader (events queue until read). The channel is closed after cancel, and
// after Run returns once every queued event was read; read it until it is
// closed or call cancel.
func (s *Supervisor) Subscribe() (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event), wake: make(chan struct{}, 1), cancel: make(chan struct{})}
	s.mu.Lock()
	if s.done {
		sub.ended = true
	} else {
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	go sub.loop()
	return sub.ch, func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		sub.once.Do(func() { close(sub.cancel) })
	}
}

func (sub *subscriber) loop() {
	defer close(sub.ch)
	for {
		sub.mu.Lock()
		q, ended := sub.q, sub.ended
		sub.q = nil
		sub.mu.Unlock()
		for _, ev := range q {
			select {
			case sub.ch <- ev:
			case <-sub.cancel:
				return
			}
		}
		if ended && len(q) == 0 {
			return
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-sub.wake:
		case <-sub.cancel:
			return
		}
	}
}

func (sub *subscriber) push(ev Event) {
	sub.mu.Lock()
	sub.q = append(sub.q, ev)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) finish() {
	sub.mu.Lock()
	sub.ended = true
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// emit publishes ev to every subscriber; s.mu is held.
func (s *Supervisor) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	for sub := range s.subs {
		sub.push(ev)
	}
}
