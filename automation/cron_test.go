package automation

import (
	"errors"
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		expr, from string
		want       []string
	}{
		{"* * * * *", "2026-01-05 10:00", []string{"2026-01-05 10:01", "2026-01-05 10:02"}},
		{"*/15 * * * *", "2026-01-05 10:07", []string{"2026-01-05 10:15", "2026-01-05 10:30", "2026-01-05 10:45", "2026-01-05 11:00"}},
		{"0 3 * * *", "2026-01-05 03:00", []string{"2026-01-06 03:00", "2026-01-07 03:00"}},
		{"30 2 1 * *", "2026-01-31 00:00", []string{"2026-02-01 02:30", "2026-03-01 02:30"}},
		{"0 0 29 2 *", "2026-01-01 00:00", []string{"2028-02-29 00:00", "2032-02-29 00:00"}},
		{"0 9 * * mon-fri", "2026-01-09 10:00", []string{"2026-01-12 09:00", "2026-01-13 09:00"}},                 // Fri -> Mon
		{"0 0 * * 7", "2026-01-05 00:00", []string{"2026-01-11 00:00"}},                                           // 7 is Sunday
		{"0 12 13 * 5", "2026-02-01 00:00", []string{"2026-02-06 12:00", "2026-02-13 12:00", "2026-02-20 12:00"}}, // dom OR dow
		{"5,10-12 1 * jan,DEC *", "2026-01-01 00:00", []string{"2026-01-01 01:05", "2026-01-01 01:10", "2026-01-01 01:11", "2026-01-01 01:12", "2026-01-02 01:05"}},
		{"10/20 * * * *", "2026-01-01 00:00", []string{"2026-01-01 00:10", "2026-01-01 00:30", "2026-01-01 00:50", "2026-01-01 01:10"}},
		{"@weekly", "2026-01-05 00:00", []string{"2026-01-11 00:00"}},
		{"@monthly", "2026-01-05 00:00", []string{"2026-02-01 00:00"}},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			c, err := ParseCron(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			cur := at(tc.from).Add(17 * time.Second)
			for _, w := range tc.want {
				cur = c.Next(cur)
				if !cur.Equal(at(w)) {
					t.Fatalf("next = %v, want %s", cur, w)
				}
			}
		})
	}
}

func TestCronInvalid(t *testing.T) {
	for _, s := range []string{"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
		"* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "a * * * *",
		"1,,2 * * * *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "@often"} {
		if _, err := ParseCron(s); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("ParseCron(%q) = %v, want ErrInvalidRule", s, err)
		}
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/15 1-5 * jan mon", "0 0 29 2 *", "@daily", "1,2,3 4-5/2 6 7 0-7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCron(s)
		if err != nil {
			return
		}
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		n := c.Next(from)
		if !n.After(from) {
			t.Fatalf("%q: next %v not after %v", s, n, from)
		}
	})
}
