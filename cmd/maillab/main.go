// Command maillab starts mail labs with reproducible faults, diagnoses mail
// accounts and verifies diagnosers against the failure catalog.
package main

import "os"

func main() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) }
