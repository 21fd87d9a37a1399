package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/internal/pahostore"
	"github.com/e4c2/e4c2/suites"
)

// The device tool is a small E4 device built on the client library, so a
// user can watch the whole system work on one machine: join (create the
// device state), subscribe (receive C2 commands and messages), publish.

const defaultBroker = "tcp://127.0.0.1:1883"

// envBroker names the broker of the device commands, as E4C2_SERVER names
// the API: set once per shell, the walkthrough's commands need no --broker.
// Not E4C2_BROKER: e4c2 serve reads that one as its external broker.
const envBroker = "E4C2_DEVICE_BROKER"

func deviceBroker() string {
	if v := os.Getenv(envBroker); v != "" {
		return v
	}
	return defaultBroker
}

func newDeviceCmd() *cobra.Command {
	c := &cobra.Command{Use: "device", Short: "An E4 device on the command line (join, subscribe, publish, show)", Args: cobra.NoArgs}
	c.AddCommand(newDeviceJoinCmd(), newDeviceSubscribeCmd(), newDevicePublishCmd(), newDeviceShowCmd())
	return c
}

func newDeviceJoinCmd() *cobra.Command {
	var name, id, keyFile, passFile, suiteName, mode, c2File, state, pubOut string
	c := &cobra.Command{
		Use:   "join --name N (--key-file F | --password-file F) --state FILE",
		Short: "create a device state file from a name and a key or password",
		Long: `Create a device: its id is derived from --name (or given with --id), its
identity comes from --key-file (SK: e4c2 keygen symmetric; PK: e4c2 keygen
identity) or --password-file. PK mode needs the C2 public key (--c2-pubkey-file).
Then register the device with the C2: e4c2 client add NAME --key-file F (SK)
or --public-key-file (PK, see --public-key-out).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				return errors.New("--state is required")
			}
			m, err := suites.ParseMode(mode)
			if err != nil {
				return err
			}
			s, err := suites.ForMode(suiteName, m)
			if err != nil {
				return err
			}
			cfg := client.Config{Suite: s, Mode: m, Name: name, StatePath: state}
			if id != "" {
				if cfg.ID, err = hex.DecodeString(id); err != nil {
					return fmt.Errorf("--id is not hex: %w", err)
				}
			}
			switch {
			case keyFile != "" && passFile != "":
				return errors.New("give --key-file or --password-file, not both")
			case keyFile != "":
				if cfg.Key, err = readKeyFile(keyFile); err != nil {
					return err
				}
				defer clear(cfg.Key)
			case passFile != "":
				if cfg.Password, err = readPassword(cmd, passFile); err != nil {
					return err
				}
			default:
				return withHint(errors.New("an identity is required"), "pass --key-file (e4c2 keygen) or --password-file")
			}
			if c2File != "" {
				if cfg.C2PublicKey, err = readKeyFile(c2File); err != nil {
					return err
				}
			} else if m == suites.PubKey {
				return withHint(errors.New("PK mode needs the C2 public key"), "pass --c2-pubkey-file FILE (written by e4c2 c2key get --out FILE, or offline by e4c2 replay --c2-pubkey-out FILE)")
			}
			if name == "" && id == "" {
				// client.New would only say "no client name or id".
				return withHint(errors.New("the device needs a name"),
					"pass --name NAME, the name it is registered with (e4c2 client add NAME), or --id HEX")
			}
			if _, err := os.Stat(state); err == nil {
				return withHint(fmt.Errorf("%s already exists", state), "a device joins once; use a new --state file")
			}
			dev, err := client.New(cfg)
			if err != nil {
				return fmt.Errorf("join: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "device %s joined (%s %s): id %x, control topic %s, state in %s\n",
				displayName(name, hex.EncodeToString(dev.ID())), s.Name(), m, dev.ID(), dev.ControlTopic(), state)
			if pub := dev.PublicKey(); pub != nil {
				if pubOut != "" {
					if err := writeKeyFile(pubOut, pub, 0o644, false); err != nil {
						return err
					}
					fmt.Fprintf(w, "public key written to %s\n", pubOut)
				} else if len(pub) <= 64 {
					fmt.Fprintf(w, "public key: %x\n", pub)
				} else {
					// Post-quantum keys run to kilobytes: no use on a terminal.
					fmt.Fprintf(w, "public key: %d bytes (save it with --public-key-out FILE to register it)\n", len(pub))
				}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "device name (its id is derived from it)")
	f.StringVar(&id, "id", "", "16-byte hex id instead of a name")
	f.StringVar(&keyFile, "key-file", "", "identity key file")
	f.StringVar(&passFile, "password-file", "", "file holding a password to derive the identity from")
	f.StringVar(&suiteName, "suite", "standard", "crypto suite")
	f.StringVar(&mode, "mode", "sk", "key mode: sk or pk")
	f.StringVar(&c2File, "c2-pubkey-file", "", "PK: file holding the C2 public key")
	f.StringVar(&state, "state", "", "device state file to create (0600)")
	f.StringVar(&pubOut, "public-key-out", "", "PK: write the device public key to this file")
	return c
}

// loadDevice reopens a device from its state file; the suite is read from
// the file itself (the client library checks it again).
func loadDevice(path string) (*client.Client, error) {
	if path == "" {
		return nil, errors.New("--state is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("device state: %w", err), "create it with e4c2 device join")
	}
	var head struct {
		Suite string `json:"suite"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("device state %s: %w", path, client.ErrStateCorrupt)
	}
	clear(b)
	s, err := suites.ByName(head.Suite)
	if err != nil {
		return nil, fmt.Errorf("device state %s: %w", path, err)
	}
	dev, err := client.Load(path, client.WithSuite(s))
	if err != nil {
		return nil, fmt.Errorf("device state: %w", err)
	}
	return dev, nil
}

func newDeviceSubscribeCmd() *cobra.Command {
	var state, broker, user, passFile, ready string
	var count int
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "subscribe --state FILE [--broker URL] [TOPIC...]",
		Short: "connect to the broker, apply C2 commands and print every message received, decrypted, one per line",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, topics []string) error {
			if broker == "" {
				broker = deviceBroker()
			}
			dev, err := loadDevice(state)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			msgs := make(chan e4mqtt.Message, 256)
			cfg := e4mqtt.Config{BrokerURL: broker, Username: user, OnMessage: func(m e4mqtt.Message) {
				select {
				case msgs <- m:
				case <-ctx.Done():
				}
			}}
			if passFile != "" {
				if cfg.Password, err = readPassword(cmd, passFile); err != nil {
					return err
				}
			}
			d, err := e4mqtt.Connect(ctx, dev, cfg)
			if err != nil {
				return withHint(fmt.Errorf("connect to %s: %w", broker, err), "is e4c2 serve (or your broker) running? set --broker")
			}
			defer d.Close()
			if len(topics) > 0 {
				if err := d.Subscribe(ctx, topics...); err != nil {
					return fmt.Errorf("subscribe: %w", err)
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: device %x listening on %s and %d topics\n", dev.ID(), dev.ControlTopic(), len(topics))
			if ready != "" {
				if err := os.WriteFile(ready, []byte("ready\n"), 0o600); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			for n := 0; count == 0 || n < count; n++ {
				select {
				case <-ctx.Done():
					if errors.Is(ctx.Err(), context.DeadlineExceeded) {
						return fmt.Errorf("timed out after %s with %d messages", timeout, n)
					}
					return nil
				case m := <-msgs:
					switch {
					case m.Err != nil:
						fmt.Fprintf(w, "%s: error: %v\n", m.Topic, m.Err)
						if errors.Is(m.Err, client.ErrPubKeyNotFound) {
							// PK: messages are signed; the receiver checks
							// them with the sender's public key, which only
							// the C2 sends it.
							fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: hint: send this device the sender's public key: e4c2 pubkey send %x SENDER (or its name)\n", dev.ID())
						}
					case m.Command:
						fmt.Fprintf(w, "%s: command applied\n", m.Topic)
					default:
						fmt.Fprintf(w, "%s: %s\n", m.Topic, m.Payload)
					}
				}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&state, "state", "", "device state file")
	f.StringVar(&broker, "broker", "", "MQTT broker URL (default $"+envBroker+" or "+defaultBroker+")")
	f.StringVar(&user, "username", "", "broker username")
	f.StringVar(&passFile, "password-file", "", "file holding the broker password")
	f.IntVar(&count, "count", 0, "exit after this many messages (commands included); 0: until interrupted")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0: never)")
	f.StringVar(&ready, "ready-file", "", "create this file once subscribed (for scripts)")
	return c
}

func newDevicePublishCmd() *cobra.Command {
	var state, broker, user, passFile string
	var qos int
	c := &cobra.Command{
		Use:   "publish --state FILE [--broker URL] TOPIC MESSAGE",
		Short: "protect MESSAGE with the device's topic key and publish it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if qos != 1 && qos != 2 {
				return errors.New("--qos must be 1 or 2")
			}
			if broker == "" {
				broker = deviceBroker()
			}
			dev, err := loadDevice(state)
			if err != nil {
				return err
			}
			protected, err := dev.ProtectMessage([]byte(args[1]), args[0])
			if err != nil {
				if errors.Is(err, client.ErrTopicKeyMissing) {
					return withHint(fmt.Errorf("protect: %w", err), "attach the device to the topic (e4c2 attach) and let e4c2 device subscribe receive the key")
				}
				return fmt.Errorf("protect: %w", err)
			}
			// The device's own client id (the C2's broker binds it to the
			// device credential), in a clean session that subscribes to
			// nothing: it takes no command, so none can count as
			// confirmed without being applied. A subscriber running
			// with the same state is disconnected for that moment and
			// reconnects by itself.
			opts := paho.NewClientOptions().AddBroker(broker).
				SetClientID(credential.ClientID(dev.ID())).
				SetCleanSession(true).SetConnectTimeout(10 * time.Second).SetAutoReconnect(false).
				SetStore(pahostore.New())
			if user != "" {
				opts.SetUsername(user)
			} else {
				u, pw, err := dev.MQTTCredential()
				if err != nil {
					return err
				}
				opts.SetUsername(u).SetPassword(pw)
			}
			if passFile != "" {
				pw, err := readPassword(cmd, passFile)
				if err != nil {
					return err
				}
				opts.SetPassword(pw)
			}
			pc := paho.NewClient(opts)
			if err := waitToken(cmd.Context(), pc.Connect()); err != nil {
				return withHint(fmt.Errorf("connect to %s: %w", broker, err), "is e4c2 serve (or your broker) running? set --broker")
			}
			defer pc.Disconnect(250)
			if err := waitToken(cmd.Context(), pc.Publish(args[0], byte(qos), false, protected)); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %d protected bytes to %s (QoS %d)\n", len(protected), args[0], qos)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&state, "state", "", "device state file")
	f.StringVar(&broker, "broker", "", "MQTT broker URL (default $"+envBroker+" or "+defaultBroker+")")
	f.StringVar(&user, "username", "", "broker username")
	f.StringVar(&passFile, "password-file", "", "file holding the broker password")
	f.IntVar(&qos, "qos", 2, "MQTT QoS: 1 or 2")
	return c
}

// waitToken waits for a paho token, bounded by ctx and 15 s.
func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(15 * time.Second):
		return e4mqtt.ErrTimeout
	}
}

func newDeviceShowCmd() *cobra.Command {
	var state string
	var asJSON bool
	c := &cobra.Command{
		Use:   "show --state FILE",
		Short: "print a device's id, mode and which topic keys and public keys it holds (never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := loadDevice(state)
			if err != nil {
				return err
			}
			st := dev.State()
			defer func() {
				// State is a deep copy holding keys: wipe it.
				clear(st.Key)
				for _, tk := range st.Topics {
					clear(tk.Key)
					clear(tk.Previous)
				}
			}()
			out := struct {
				ID           string   `json:"id"`
				Suite        string   `json:"suite"`
				Mode         string   `json:"mode"`
				ControlTopic string   `json:"control_topic"`
				Topics       []string `json:"topic_hashes"`
				PubKeys      []string `json:"pubkey_ids"`
			}{ID: hex.EncodeToString(st.ID), Suite: st.Suite, Mode: st.Mode.String(), ControlTopic: dev.ControlTopic(), Topics: []string{}, PubKeys: []string{}}
			for h := range st.Topics {
				out.Topics = append(out.Topics, h)
			}
			for id := range st.PubKeys {
				out.PubKeys = append(out.PubKeys, id)
			}
			sort.Strings(out.Topics)
			sort.Strings(out.PubKeys)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "id %s (%s %s), control topic %s\n", out.ID, out.Suite, out.Mode, out.ControlTopic)
			fmt.Fprintf(w, "topic keys: %d\n", len(out.Topics))
			for _, h := range out.Topics {
				fmt.Fprintf(w, "  %s\n", h)
			}
			if out.Mode == "pk" {
				fmt.Fprintf(w, "public keys: %d\n", len(out.PubKeys))
				for _, id := range out.PubKeys {
					fmt.Fprintf(w, "  %s\n", id)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&state, "state", "", "device state file")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
