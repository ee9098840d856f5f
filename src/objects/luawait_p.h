// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "objects/mailbox_p.h"

#include <QtCore/QDeadlineTimer>
#include <QtCore/QFuture>

#include <QIsle/QIsleLua>

#include <functional>
#include <memory>

// How a script waits for work done in another thread (a posted call, a
// signal) where it cannot yield: the Lua thread blocks, stoppably.
namespace LuaWait {

// Lua thread: waits until `future` finished. A stop of the running request
// (cancel, timeout, the isle's destruction) calls `cancel` -- which drops the
// awaited work if it has not started -- and raises the stop; a suspension
// parks here. Meanwhile the thread runs the calls other threads post to
// objects of this thread, and the child requests of `children`. False when
// `deadline` passed first.
bool block(lua_State *L, const QFuture<QVariant> &future, const std::function<void()> &cancel,
           const std::shared_ptr<ChildInbox> &children = {},
           QDeadlineTimer deadline = QDeadlineTimer(QDeadlineTimer::Forever));

// The result 0 of a finished future, or its QIsleError thrown (a canceled
// future without one: Runtime, "... canceled").
QVariant result(const QFuture<QVariant> &future, const QString &what);

} // namespace LuaWait
