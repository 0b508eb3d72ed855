// Package cliutil holds what every binary of the project shares: the
// version string, log setup, size parsing and size flags, byte
// formatting, and the TOML config file that sets long flags.
package cliutil
