// Command gohelper lets the Python client's tests check that bytes written
// by the Go client are read by Python and the reverse.
//
//	gohelper put SOCKET ID DATAFILE METAHEX   store DATAFILE's bytes under ID
//	                                          (ID "-": content-addressed Put);
//	                                          prints the id
//	gohelper get SOCKET ID TIMEOUTMS OUTFILE  write the object's data to
//	                                          OUTFILE; prints its metadata in hex
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/plasmastream/plasmastream/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gohelper:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("usage: gohelper put SOCKET ID DATAFILE METAHEX | get SOCKET ID TIMEOUTMS OUTFILE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := store.Connect(ctx, args[1])
	if err != nil {
		return err
	}
	defer c.Close()
	switch args[0] {
	case "put":
		data, err := os.ReadFile(args[3])
		if err != nil {
			return err
		}
		meta, err := hex.DecodeString(args[4])
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		var id store.ObjectID
		if args[2] == "-" {
			if id, err = c.Put(ctx, data, meta); err != nil {
				return err
			}
		} else {
			if id, err = store.ParseObjectID(args[2]); err != nil {
				return err
			}
			if err := c.PutID(ctx, id, data, meta); err != nil {
				return err
			}
		}
		fmt.Println(id)
	case "get":
		id, err := store.ParseObjectID(args[2])
		if err != nil {
			return err
		}
		ms, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		timeout := time.Duration(ms) * time.Millisecond
		if ms < 0 {
			timeout = -1
		}
		o, err := c.GetOne(ctx, id, timeout)
		if err != nil {
			return err
		}
		if err := os.WriteFile(args[4], o.Data, 0o644); err != nil {
			return err
		}
		fmt.Println(hex.EncodeToString(o.Metadata))
		return c.Release(ctx, id)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}
