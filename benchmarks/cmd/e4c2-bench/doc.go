// Command e4c2-bench runs the e4c2 benchmark suite (package benchmarks):
// every crypto suite and mode, the event store, and the C2 end to end with
// connected devices. It prints a table, and on request writes a JSON report
// (--out), SVG charts (--charts) and compares with an earlier report
// (--compare). `e4c2 bench` is the same runner.
//
//	go run ./benchmarks/cmd/e4c2-bench --out results.json --charts charts
package main
