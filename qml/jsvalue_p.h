// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/QVariant>

namespace JsValue {

// A value from JavaScript made ready for the value bridge: QJSValue unwrapped
// (arrays -> QVariantList, objects -> QVariantMap, recursively), null and
// undefined -> QVariant() (nil), and whole numbers -> qlonglong, since
// JavaScript has no integers and `add(1, 2)` should see Lua integers.
QVariant toLua(const QVariant &value);

} // namespace JsValue
