// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qislevalue.h
/// \brief QIsleValue: the value bridge between QVariant and Lua.

#include <QIsle/qisleglobal.h>

#include <QtCore/QString>
#include <QtCore/QVariant>

/// The value bridge between QVariant and Lua (README, "Values"), for exec
/// closures, init functions and host code that would otherwise write stack
/// code by hand. eval/call results, call arguments, registerFunction arguments
/// and results and isle.emit() values all cross through it.
///
/// Both functions throw QIsleError (Kind::Conversion) whose message says where
/// and what ("result.items[3]: cannot convert a function", "args[2].name:
/// cannot convert a QVariant of type QDateTime"); `where` is the root of that
/// path. Either way they leave the stack as they found it (push: plus the one
/// value on success); debug builds assert it. Call them where C++ exceptions
/// are caught: in exec closures, init functions and registered host functions
/// -- not from a raw lua_CFunction, since an exception must not unwind through
/// Lua's C frames. Lua errors they cannot avoid (out of memory while growing
/// the stack or building a table) are raised as Lua errors.
///
/// Tables are data: metatables (__index, __pairs, __tostring, __name) are never
/// consulted. An empty table reads as an empty QVariantList.
namespace QIsleValue {

/// Tables (and QVariant containers) nested deeper than this fail to convert,
/// both ways: a value may hold 128 levels of tables, the root being level 1.
constexpr int MaxDepth = 128;

/// Pushes v onto L's stack.
QISLE_EXPORT void push(lua_State *L, const QVariant &v, const QString &where = QStringLiteral("value"));
/// Reads the value at stack slot index (not popped). A slot past the top reads
/// as an invalid QVariant, as nil does.
QISLE_EXPORT QVariant read(lua_State *L, int index, const QString &where = QStringLiteral("value"));

} // namespace QIsleValue
