package automation

import (
	"fmt"

	"github.com/e4c2/e4c2/domain"
)

// DecodeEvent decodes the payload of a rule event for the offline tools
// (verify, replay, export, audit, master-key rotate), which must read every
// event type of a log. It returns the payload as a value of this package
// (never a key: rule events hold none), an error wrapping ErrInvalidEvent
// for a payload that does not decode, or one wrapping
// domain.ErrUnknownEvent for a wire name it has no decoder for. The switch names every entry of WireNames: a new rule event
// without a decoder here fails the registry test of internal/eventreg.
func DecodeEvent(wireType string, data []byte) (any, error) {
	switch wireType {
	case TypeRuleCreated, TypeRuleUpdated:
		var p ruleSpecEvent
		if err := decodePayload(wireType, data, &p); err != nil {
			return nil, err
		}
		return p, nil
	case TypeRulePaused, TypeRuleStopped:
		var p reasonEvent
		if err := decodePayload(wireType, data, &p); err != nil {
			return nil, err
		}
		return p, nil
	case TypeRuleResumed, TypeRuleDeleted:
		var p struct{}
		if err := decodePayload(wireType, data, &p); err != nil {
			return nil, err
		}
		return p, nil
	case TypeRuleFired:
		var p firedEvent
		if err := decodePayload(wireType, data, &p); err != nil {
			return nil, err
		}
		return p, nil
	case TypeRuleCompleted:
		var p completedEvent
		if err := decodePayload(wireType, data, &p); err != nil {
			return nil, err
		}
		return p, nil
	}
	// Unknown, not invalid: a name of WireNames that reaches here has no
	// decoder, which the registry test reports.
	return nil, fmt.Errorf("automation: decode %q: %w", wireType, domain.ErrUnknownEvent)
}
