package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// fuzzBody posts arbitrary bytes to path and checks the API answers with a
// success or a 4xx JSON error: never a 5xx, never a panic.
func fuzzBody(f *testing.F, method, path string, setup func(h *harness), seeds ...string) {
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	h := newHarness(f, Config{BodyLimit: 4096})
	if setup != nil {
		setup(h)
	}
	var execs atomic.Int64
	countDir := os.Getenv("HTTP_FUZZ_COUNT_DIR")
	f.Fuzz(func(t *testing.T, body []byte) {
		if n := execs.Add(1); countDir != "" && n%1024 == 0 {
			// go test -fuzz under-reports worker executions on this machine;
			// this file gives the true count per worker process.
			_ = os.WriteFile(filepath.Join(countDir, fmt.Sprintf("%s-%d", f.Name(), os.Getpid())), []byte(strconv.FormatInt(n, 10)), 0o600)
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+h.admin)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.s.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body.String())
		}
		if rec.Code >= 300 {
			var eb apitypes.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("status %d without a JSON error: %q", rec.Code, rec.Body.String())
			}
		}
	})
}

func FuzzCreateClientBody(f *testing.F) {
	fuzzBody(f, post, "/api/v1/clients", nil,
		`{"name":"dev1","key":"`+key32+`"}`,
		`{"id":"`+strings.Repeat("ab", 16)+`","key":"`+key32+`","role":"consumer"}`,
		`{"name":"x","public_key":"`+key32+`"}`,
		`{"name":"x","key":"zz"}`, `{"name":"","key":""}`, `{`, `[]`, `null`, `{"name":1}`,
		`{"name":"x","key":"`+key32+`"} trailing`)
}

func FuzzNewTopicBody(f *testing.F) {
	fuzzBody(f, post, "/api/v1/topics", nil,
		`{"topic":"a/b"}`, `{"topic":"$SYS/x"}`, `{"topic":"#"}`, `{"topic":""}`, `{"topic":null}`, `"x"`)
}

func FuzzBatchAttachBody(f *testing.F) {
	setup := func(h *harness) {
		h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "t"})
		h.do(post, "/api/v1/clients", h.oper, map[string]string{"name": "a", "key": key32})
	}
	fuzzBody(f, post, "/api/v1/batch/attach", setup,
		`{"topic":"t","clients":["a","b"]}`, `{"topic":"t","clients":[]}`, `{"topic":"t","clients":[""]}`,
		`{"topic":"t","clients":"a"}`, `{"clients":["a"]}`)
}

func FuzzCreateTokenBody(f *testing.F) {
	fuzzBody(f, post, "/api/v1/tokens", nil,
		`{"name":"ci","role":"reader"}`, `{"name":"ci","role":"root"}`, `{"name":"a b","role":"admin"}`, `{}`)
}

func FuzzProtectBody(f *testing.F) {
	setup := func(h *harness) {
		h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "t"})
	}
	fuzzBody(f, post, "/api/v1/topics/t/unprotect", setup,
		`{"protected":"AAAA"}`, `{"protected":"!!"}`, `{"protected":""}`, `{"payload":"AA=="}`)
}
