//go:build !linux

package broker

import "errors"

// poller is Linux only (epoll); elsewhere every device session keeps a
// goroutine blocked in its read.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("broker: no epoll on this system") }

func (p *poller) assign(*session) error { return errors.New("broker: no epoll on this system") }
func (p *poller) add(*session) error    { return errors.New("broker: no epoll on this system") }
func (p *poller) arm(*session) error    { return errors.New("broker: no epoll on this system") }
func (p *poller) remove(*session)       {}
func (p *poller) close()                {}

func (p *poller) size() int { return 0 }
