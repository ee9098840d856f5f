// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/*!
    \file qislelua.h
    \brief Lua 5.4's C API exactly as QIsle was built against it.

    Include `<QIsle/QIsleLua>` in code that talks to the VM (spawn()'s init,
    exec() closures) and link nothing but `QIsle::QIsle`: the target carries
    Lua's include directory and library (Debian's C++ build, pkg-config
    `lua5.4-c++`, where `lua_error` throws a C++ exception so destructors run).
    Do not wrap Lua's headers in `extern "C"` yourself: the linkage of the
    C API is the one `luaconf.h` of that build declares.
*/

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
