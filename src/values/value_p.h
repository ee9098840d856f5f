// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisleerror.h>
#include <QIsle/qislevalue.h>

#include <QIsle/QIsleLua>

// The value bridge (see README, "Values"). read/push throw QIsleError of kind
// Conversion, whose message starts with the path of the failing value
// ("result.items[3]: cannot convert a function"), and restore the stack.
namespace Value {

QVariant read(lua_State *L, int index, const QString &where);
void push(lua_State *L, const QVariant &value, const QString &where);
// nil, bool, int, qlonglong and double pushed as push() would, without its
// set-up; false (nothing pushed) for any other type. The caller has checked
// there is room for one value.
bool pushScalar(lua_State *L, const QVariant &value);

// A readable text for any error object, without running unprotected code:
// strings as they are, __tostring through a protected call, else the type.
QString describeErrorObject(lua_State *L, int index);

// Whether bytes are well-formed UTF-8 (no overlongs, no surrogates).
bool isValidUtf8(const char *data, size_t length);

} // namespace Value
