package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version and the source revision this binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Read()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{
					"version": i.Version, "revision": i.Revision, "time": i.Time,
					"modified": i.Modified, "go": i.GoVersion,
				})
			}
			fmt.Fprintln(cmd.OutOrStdout(), i.String())
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
