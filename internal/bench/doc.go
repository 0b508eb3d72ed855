// Package bench holds the benchmarks the `plasma bench` commands run
// against real components, printing a table for people and, last, one
// JSON line for machines.
package bench
