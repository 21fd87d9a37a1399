package benchmarks

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/suites/core"
)

// c2Env is a C2 service on a durable boltstore in a directory, as e4c2
// serve builds it minus the broker and the API.
type c2Env struct {
	Dir     string
	Store   *boltstore.Store
	Keyring *sealing.Keyring
	Svc     *c2.Service
	master  []byte
}

// origin marks every benchmark operation in the log.
var origin = c2.Origin{Actor: "system:bench"}

// openC2 opens (or reopens) the store in dir and starts a service on it.
// master is the master key; nil creates one. auditMax is
// c2.Config.AuditMax (0: unlimited; server.Start passes the configured
// audit_memory, config.Default().AuditMemory unless set).
func openC2(ctx context.Context, dir string, suite core.Suite, mode core.Mode, master []byte, auditMax int) (*c2Env, error) {
	if master == nil {
		master = make([]byte, sealing.KeySize)
		if _, err := rand.Read(master); err != nil {
			return nil, err
		}
	}
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	mk, err := sealing.MasterKeyFromBytes(master)
	if err != nil {
		st.Close()
		return nil, err
	}
	defer mk.Destroy()
	kr, err := sealing.OpenKeyring(ctx, st, mk)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	svc, err := c2.New(c2.Config{Store: st, Sealer: kr, Suite: suite, Mode: mode, AuditMax: auditMax})
	if err != nil {
		kr.Close()
		st.Close()
		return nil, fmt.Errorf("c2 service: %w", err)
	}
	return &c2Env{Dir: dir, Store: st, Keyring: kr, Svc: svc, master: master}, nil
}

// Close stops the service and closes the keyring and the store.
func (e *c2Env) Close() error {
	err := e.Svc.Close()
	e.Keyring.Close()
	if cerr := e.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// registerClients registers the named clients with keys[i] (SK key or PK
// public key), par at a time so that group commit shares the fsyncs.
// done is called after each registration (progress).
func registerClients(ctx context.Context, svc *c2.Service, names []string, keys [][]byte, par int, done func()) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) || ctx.Err() != nil {
					return
				}
				if _, err := svc.NewClient(ctx, origin, c2.ByName(names[i]), keys[i], domain.RoleConsumer); err != nil {
					errs <- fmt.Errorf("register %s: %w", names[i], err)
					return
				}
				if done != nil {
					done()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// attachAll links the named clients to topic in batches of batch.
func attachAll(ctx context.Context, svc *c2.Service, topic string, names []string, batch int, done func(int)) error {
	for i := 0; i < len(names); i += batch {
		j := min(i+batch, len(names))
		refs := make([]c2.ClientRef, 0, j-i)
		for _, n := range names[i:j] {
			refs = append(refs, c2.ByName(n))
		}
		if _, err := svc.AttachClients(ctx, origin, topic, refs); err != nil {
			return fmt.Errorf("attach to %s: %w", topic, err)
		}
		if done != nil {
			done(j - i)
		}
	}
	return nil
}
