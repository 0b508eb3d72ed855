// Package stream is the Go client of plasma-stream-server.
//
//	c, err := stream.Connect(ctx, "127.0.0.1:2021")
//	oid, err := stream.ParseObjectID("0102030405060708090a0b0c0d0e0f1011121314")
//	res, err := c.Sync(ctx, []stream.PeerRequest{
//	    {Kind: stream.Copy, From: "127.0.0.1:2022", Objects: []stream.ObjectID{oid}},
//	})
//	c.Close()
//
// Sync asks the server to pull objects from other servers into its store
// (SYNC). CopyFrom and TakeFrom pull from a remote server
// straight into a store of this machine, without a local stream server.
// Pull runs a verified multi-source fetch from nodes you name. Ping, Stat
// and List inspect a server (Ping and Stat also say whether its store is
// up); Nodes, Locate, Fetch, Prefetch and DeleteEverywhere use a cluster.
//
// A Client holds one connection and runs one request at a time; it is
// safe for concurrent use (requests queue). Open several for parallelism.
package stream
