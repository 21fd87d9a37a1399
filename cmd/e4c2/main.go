// Command e4c2 is the E4 command-and-control server and its operator CLI.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "e4c2: error: the server is not assembled yet")
	os.Exit(1)
}
