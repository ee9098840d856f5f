// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

// Lua's C++ build raises an error by throwing a `lua_longjmp *` (ldo.c,
// LUAI_THROW). A trampoline that must also catch unknown C++ exceptions
// (catch (...)) has to let this one pass first, or it would swallow Lua's own
// errors. The definition is ldo.c's, token for token (luai_jmpbuf is int in
// the C++ build), as a handler needs a complete type.
struct lua_longjmp
{
    struct lua_longjmp *previous;
    int b;
    volatile int status;
};
