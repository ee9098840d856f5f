// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QtCore/qglobal.h>

#if defined(QISLE_STATIC)
#  define QISLE_EXPORT
#elif defined(QISLE_BUILDING_LIBRARY)
#  define QISLE_EXPORT Q_DECL_EXPORT
#else
#  define QISLE_EXPORT Q_DECL_IMPORT
#endif

// Only the pointer type crosses the public API; Lua's headers stay private to
// the code that actually talks to the VM (exec closures, init functions).
struct lua_State;
