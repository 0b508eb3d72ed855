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
	tuned   bool
	batch   int   // payload bytes per record batch (one gRPC message)
	window  int32 // stream and connection flow-control windows; 0: gRPC's BDP estimate
	buffer  int   // transport read and write buffers; 0: gRPC's 32 KiB
	maxMsg  int   // largest message either side accepts; 0: gRPC's 4 MiB
	rawPool bool  // a buffer pool that does not zero
}

// tunedProfile is the tuned configuration after the command line.
var tunedProfile profile

// profileOf is gRPC's defaults (1 MiB batches fit its 4 MiB message
// limit) or the tuned configuration: 4 MiB batches, 64 MiB static
// windows, 1 MiB transport buffers, a buffer pool that does not zero what
// it hands out (gRPC's default pool clears every reused buffer).
func profileOf(tuned bool) profile {
	if !tuned {
		return profile{batch: 1 << 20}
	}
	if tunedProfile.tuned {
		return tunedProfile
	}
	return profile{tuned: true, batch: 4 << 20, window: 64 << 20, buffer: 1 << 20, maxMsg: 64 << 20, rawPool: true}
}

func (p profile) describe() string {
	return fmt.Sprintf("%d KiB record batches, %d KiB static stream and connection windows, %d KiB read/write buffers, %d MiB max message, non-zeroing buffer pool %v, both ends",
		p.batch>>10, p.window>>10, p.buffer>>10, p.maxMsg>>20, p.rawPool)
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
		p.pool())
}

func (p profile) pool() grpc.DialOption {
	if !p.rawPool {
		return grpc.EmptyDialOption{}
	}
	return experimental.WithBufferPool(&rawPool{})
}

func (p profile) serverPool() grpc.ServerOption {
	if !p.rawPool {
		return grpc.EmptyServerOption{}
	}
	return experimental.BufferPool(&rawPool{})
}

func (p profile) serverOptions() []grpc.ServerOption {
	if !p.tuned {
		return nil
	}
	return []grpc.ServerOption{
		grpc.StaticStreamWindowSize(p.window), grpc.StaticConnWindowSize(p.window),
		grpc.ReadBufferSize(p.buffer), grpc.WriteBufferSize(p.buffer),
		grpc.MaxRecvMsgSize(p.maxMsg), grpc.MaxSendMsgSize(p.maxMsg),
		p.serverPool()}
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
