// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/QIsleLua>

// isle.channel([capacity]) and isle.select(channels [, timeoutMs]): channels
// of Lua values between the fibers of an isle (tasks of one request, or
// requests that share a channel through a global). send/recv/select wait
// through the Scheduler; try_send/try_recv and a polling select never wait.
//
// Lua thread only.
namespace Channels {

// Adds channel and select to the isle table and registers the channel type.
void open(lua_State *L);

} // namespace Channels
