package automation

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed 5-field cron expression, evaluated in UTC:
//
//	minute (0-59)  hour (0-23)  day-of-month (1-31)  month (1-12 or JAN-DEC)
//	day-of-week (0-7 or SUN-SAT, 0 and 7 are Sunday)
//
// Each field is "*", a value, a range "a-b", a step "*/n", "a-b/n" or "a/n",
// or a comma-separated list of those. As in Vixie cron, when both
// day-of-month and day-of-week are restricted a day matching either runs.
// The macros @hourly, @daily (@midnight), @weekly, @monthly and @yearly
// (@annually) are accepted.
type Cron struct {
	src               string
	minute, hour, dom uint64
	month, dow        uint64
	domStar, dowStar  bool
}

var cronMacros = map[string]string{
	"@hourly":   "0 * * * *",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@weekly":   "0 0 * * 0",
	"@monthly":  "0 0 1 * *",
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var dowNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseCron parses a 5-field cron expression. It refuses expressions that
// never match (such as "0 0 30 2 *").
func ParseCron(s string) (*Cron, error) {
	src := strings.TrimSpace(s)
	expanded := src
	if m, ok := cronMacros[strings.ToLower(src)]; ok {
		expanded = m
	}
	f := strings.Fields(expanded)
	if len(f) != 5 {
		return nil, fmt.Errorf("automation: cron %q: %w: want 5 fields, got %d", src, ErrInvalidRule, len(f))
	}
	c := &Cron{src: src}
	var err error
	if c.minute, err = parseCronField(f[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("automation: cron %q: minute: %w", src, err)
	}
	if c.hour, err = parseCronField(f[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("automation: cron %q: hour: %w", src, err)
	}
	if c.dom, err = parseCronField(f[2], 1, 31, nil); err != nil {
		return nil, fmt.Errorf("automation: cron %q: day of month: %w", src, err)
	}
	if c.month, err = parseCronField(f[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("automation: cron %q: month: %w", src, err)
	}
	if c.dow, err = parseCronField(f[4], 0, 7, dowNames); err != nil {
		return nil, fmt.Errorf("automation: cron %q: day of week: %w", src, err)
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	c.domStar = strings.HasPrefix(f[2], "*")
	c.dowStar = strings.HasPrefix(f[4], "*")
	// Leap days repeat within 8 years; anything that does not match by
	// then never will.
	if _, ok := c.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 9); !ok {
		return nil, fmt.Errorf("automation: cron %q: %w: never matches", src, ErrInvalidRule)
	}
	return c, nil
}

// String returns the expression as written.
func (c *Cron) String() string { return c.src }

func parseCronField(s string, lo, hi int, names []string) (uint64, error) {
	var bits uint64
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			return 0, fmt.Errorf("%w: empty list item", ErrInvalidRule)
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > hi-lo+1 {
				return 0, fmt.Errorf("%w: bad step %q", ErrInvalidRule, stepStr)
			}
			step = n
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
		default:
			as, bs, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = cronValue(as, lo, hi, names); err != nil {
				return 0, err
			}
			b = a
			if isRange {
				if b, err = cronValue(bs, lo, hi, names); err != nil {
					return 0, err
				}
				if b < a {
					return 0, fmt.Errorf("%w: range %q runs backwards", ErrInvalidRule, rng)
				}
			} else if hasStep {
				b = hi // "a/n": from a to the end
			}
		}
		for v := a; v <= b; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func cronValue(s string, lo, hi int, names []string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i + lo, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%w: value %q out of %d-%d", ErrInvalidRule, s, lo, hi)
	}
	return v, nil
}

func (c *Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	default:
		return dom || dow
	}
}

// Next returns the first minute strictly after t that matches, in UTC.
func (c *Cron) Next(t time.Time) time.Time {
	n, _ := c.next(t, 9)
	return n
}

func (c *Cron) next(t time.Time, years int) (time.Time, bool) {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(years, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			t = t.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if c.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t, true
	}
	return time.Time{}, false
}
