package clustertest

import "syscall"

// sysProcAttr kills the etcd processes if the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
