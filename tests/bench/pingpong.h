// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

// Row 1, the limit: what one hand-off to another thread and back costs
// without any library, so QIsle's round trip can be read against it.

namespace PingPong {

// Microseconds per round trip between the calling thread (pinned to
// callerCpu) and a fresh thread (pinned to otherCpu), over roundTrips.
// The calling thread is unpinned again before returning.
double condvarUs(int roundTrips, int callerCpu, int otherCpu);
double atomicWaitUs(int roundTrips, int callerCpu, int otherCpu);

// "std::atomic::wait (libstdc++)" or "futex", whichever atomicWaitUs uses.
const char *atomicWaitKind();

} // namespace PingPong
