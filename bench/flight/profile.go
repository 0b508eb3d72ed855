package main

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
)

// profile is one gRPC configuration of client and server.
type profile struct {
	tuned  bool
	batch  int   // payload bytes per record batch (one gRPC message)
	window int32 // stream and connection flow-control windows; 0: gRPC's BDP estimate
	buffer int   // transport read and write buffers; 0: gRPC's 32 KiB
	maxMsg int   // largest message either side accepts; 0: gRPC's 4 MiB
}

// profileOf is gRPC's defaults (1 MiB batches fit its 4 MiB message
// limit) or the tuned configuration: 4 MiB batches, 64 MiB static
// windows, 1 MiB transport buffers, a buffer pool that does not zero what
// it hands out (gRPC's default pool clears every reused buffer).
func profileOf(tuned bool) profile {
	if !tuned {
		return profile{batch: 1 << 20}
	}
	return profile{tuned: true, batch: 4 << 20, window: 64 << 20, buffer: 1 << 20, maxMsg: 64 << 20}
}

func (p profile) describe() string {
	return fmt.Sprintf("%d MiB record batches, %d MiB static stream and connection windows, %d MiB read/write buffers, %d MiB max message, non-zeroing buffer pool, both ends",
		p.batch>>20, p.window>>20, p.buffer>>20, p.maxMsg>>20)
}

func (p profile) dialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if !p.tuned {
		return opts
	}
	return append(opts,
		grpc.WithStaticStreamWindowSize(p.window), grpc.WithStaticConnWindowSize(p.window),
		grpc.WithReadBufferSize(p.buffer), grpc.WithWriteBufferSize(p.buffer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(p.maxMsg), grpc.MaxCallSendMsgSize(p.maxMsg)),
		experimental.WithBufferPool(&rawPool{}))
}

func (p profile) serverOptions() []grpc.ServerOption {
	if !p.tuned {
		return nil
	}
	return []grpc.ServerOption{
		grpc.StaticStreamWindowSize(p.window), grpc.StaticConnWindowSize(p.window),
		grpc.ReadBufferSize(p.buffer), grpc.WriteBufferSize(p.buffer),
		grpc.MaxRecvMsgSize(p.maxMsg), grpc.MaxSendMsgSize(p.maxMsg),
		experimental.BufferPool(&rawPool{})}
}

// rawPool hands out buffers by power-of-two capacity, reused without
// clearing: gRPC overwrites every byte it reads into them.
type rawPool struct {
	tiers [40]sync.Pool
}

func (p *rawPool) Get(n int) *[]byte {
	t := bits.Len(uint(max(n, 1) - 1))
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<t)
	return &b
}

func (p *rawPool) Put(b *[]byte) {
	c := cap(*b)
	if c == 0 || c&(c-1) != 0 {
		return // not one of ours
	}
	p.tiers[bits.Len(uint(c-1))].Put(b)
}
