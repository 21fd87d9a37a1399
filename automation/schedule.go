package automation

import "time"

// nextTick returns the first tick of c strictly after t.
func (c *compiled) nextTick(t time.Time) time.Time {
	if c.cron != nil {
		return c.cron.Next(t)
	}
	return t.Add(time.Duration(c.spec.Trigger.Every))
}

// anchor is the time the schedule counts from: the later of the rule's
// (re)definition and its last fired tick.
func (st *ruleState) anchor() time.Time {
	if st.lastTick.After(st.specTime) {
		return st.lastTick
	}
	return st.specTime
}

// dueTick returns the tick a scheduled rule should fire for at now, if any:
// the latest tick after the anchor that is not after now. With the skip
// policy a tick later than grace (the engines were down) is not fired: the
// rule waits for its next period; with once it fires, once, for all the
// missed periods.
func (c *compiled) dueTick(st *ruleState, now time.Time, grace time.Duration) (time.Time, bool) {
	anchor := st.anchor()
	next := c.nextTick(anchor)
	if next.IsZero() || next.After(now) {
		return time.Time{}, false
	}
	latest := next
	if c.cron == nil {
		every := time.Duration(c.spec.Trigger.Every)
		k := now.Sub(anchor) / every
		latest = anchor.Add(k * every)
	} else {
		// Bounded walk: a minutely cron missed for a week is 10,080
		// steps; beyond the bound the latest tick found is close enough
		// to now to decide the policy.
		for range 20000 {
			n := c.cron.Next(latest)
			if n.IsZero() || n.After(now) {
				break
			}
			latest = n
		}
	}
	if c.spec.Trigger.CatchUp != CatchUpOnce && now.Sub(latest) > grace {
		return time.Time{}, false
	}
	return latest, true
}

// nextFire returns when a scheduled rule fires next (for Rule.NextFire).
func (c *compiled) nextFire(st *ruleState) time.Time {
	if !c.scheduled() {
		return time.Time{}
	}
	return c.nextTick(st.anchor())
}
