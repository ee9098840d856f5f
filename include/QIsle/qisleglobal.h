// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qisleglobal.h
/// \brief The export macro and the one Lua type of the public API.

#include <QtCore/qglobal.h>

/// \def QISLE_EXPORT
/// Exports a symbol from the QIsle library, imports it in its users; empty
/// in a static build (QISLE_STATIC, which a static QIsle::QIsle defines for them).
#if defined(QISLE_STATIC)
#  define QISLE_EXPORT
#elif defined(QISLE_BUILDING_LIBRARY)
#  define QISLE_EXPORT Q_DECL_EXPORT
#else
#  define QISLE_EXPORT Q_DECL_IMPORT
#endif

/// Only the pointer type crosses the public API; Lua's headers stay private to
/// the code that actually talks to the VM (exec closures, init functions).
struct lua_State;
