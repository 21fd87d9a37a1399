package core

import "fmt"

// Format prints the command code, topic hash and id; Key is redacted
// because SetIdKey and SetTopicKey carry secret keys in it.
func (c Command) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "core.Command{Code:%s TopicHash:%x ID:%x Key:[redacted]}", c.Code, c.TopicHash, c.ID)
}
