// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QIsle/qisleglobal.h>

#include <QtCore/QString>
#include <QtCore/QVariant>

// The value bridge between QVariant and Lua, for exec closures and init
// functions that would otherwise write stack code by hand.
//
// Both functions throw QIsleError (Kind::Conversion) naming where and what
// failed, and leave the stack as they found it (push: plus the one value on
// success). Call them where C++ exceptions are caught: in exec closures, init
// functions and registered host functions -- not from a raw lua_CFunction,
// since an exception must not unwind through Lua's C frames.
namespace QIsleValue {

// Tables nested deeper than this fail to convert (both directions).
constexpr int MaxDepth = 128;

// Pushes v onto L's stack.
QISLE_EXPORT void push(lua_State *L, const QVariant &v, const QString &where = QStringLiteral("value"));
// Reads the value at stack slot index (not popped).
QISLE_EXPORT QVariant read(lua_State *L, int index, const QString &where = QStringLiteral("value"));

} // namespace QIsleValue
