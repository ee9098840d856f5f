// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "safety_p.h"

#include "stackguard_p.h"

namespace {

int refuse(lua_State *L)
{
    return luaL_error(L, "%s is disabled in QIsle", lua_tostring(L, lua_upvalueindex(1)));
}

void disable(lua_State *L, const char *table, const char *name)
{
    StackGuard guard(L);
    if (lua_getglobal(L, table) == LUA_TTABLE) {
        lua_pushfstring(L, "%s.%s", table, name);
        lua_pushcclosure(L, refuse, 1);
        lua_setfield(L, -2, name);
    }
    lua_pop(L, 1);
}

// load(chunk [, chunkname [, mode [, env]]]) with mode forced to text.
int textOnlyLoad(lua_State *L)
{
    const int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_settop(L, qMax(n, 3) + 1);
    lua_pushliteral(L, "t");
    lua_replace(L, 4);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

// loadfile(filename [, mode [, env]]) with mode forced to text.
int textOnlyLoadfile(lua_State *L)
{
    const char *filename = luaL_optstring(L, 1, nullptr);
    const bool hasEnv = !lua_isnone(L, 3);
    if (luaL_loadfilex(L, filename, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (hasEnv) {
        lua_pushvalue(L, 3);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

int dofileContinuation(lua_State *L, int, lua_KContext)
{
    return lua_gettop(L) - 1;
}

// dofile(filename) through the text-only loader.
int textOnlyDofile(lua_State *L)
{
    const char *filename = luaL_optstring(L, 1, nullptr);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, filename, "t") != LUA_OK)
        return lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofileContinuation);
    return dofileContinuation(L, 0, 0);
}

void wrapGlobal(lua_State *L, const char *name, lua_CFunction wrapper, bool withOriginal)
{
    StackGuard guard(L);
    if (lua_getglobal(L, name) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (withOriginal) {
        lua_pushcclosure(L, wrapper, 1);
    } else {
        lua_pop(L, 1);
        lua_pushcfunction(L, wrapper);
    }
    lua_setglobal(L, name);
}

void removeGlobal(lua_State *L, const char *name)
{
    lua_pushnil(L);
    lua_setglobal(L, name);
}

} // namespace

void Safety::openLibraries(lua_State *L, QIsleOptions::Libraries libraries)
{
    StackGuard guard(L);
    using O = QIsleOptions;
    static const struct { O::Library flag; const char *name; lua_CFunction open; } table[] = {
        {O::Base, LUA_GNAME, luaopen_base},         {O::Coroutine, LUA_COLIBNAME, luaopen_coroutine},
        {O::Table, LUA_TABLIBNAME, luaopen_table},  {O::String, LUA_STRLIBNAME, luaopen_string},
        {O::Utf8, LUA_UTF8LIBNAME, luaopen_utf8},   {O::Math, LUA_MATHLIBNAME, luaopen_math},
        {O::Io, LUA_IOLIBNAME, luaopen_io},         {O::Os, LUA_OSLIBNAME, luaopen_os},
        {O::Package, LUA_LOADLIBNAME, luaopen_package}, {O::Debug, LUA_DBLIBNAME, luaopen_debug},
    };
    for (const auto &lib : table) {
        if (libraries.testFlag(lib.flag)) {
            luaL_requiref(L, lib.name, lib.open, 1);
            lua_pop(L, 1);
        }
    }

    // Never, whatever the preset: end the host, load bytecode, lose the hook.
    disable(L, LUA_OSLIBNAME, "exit");
    disable(L, LUA_STRLIBNAME, "dump");
    disable(L, LUA_DBLIBNAME, "sethook");
    wrapGlobal(L, "load", textOnlyLoad, true);
    if (libraries.testFlag(O::Io) || libraries.testFlag(O::Os) || libraries.testFlag(O::Package)) {
        wrapGlobal(L, "loadfile", textOnlyLoadfile, false);
        wrapGlobal(L, "dofile", textOnlyDofile, false);
    } else {
        // A sandbox reaches no files.
        removeGlobal(L, "loadfile");
        removeGlobal(L, "dofile");
    }

    // require may load Lua files (text) but never native modules.
    if (lua_getglobal(L, LUA_LOADLIBNAME) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, "loadlib");
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "cpath");
        if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
            // 1: preload, 2: Lua files; 3 and 4 load C libraries.
            lua_pushnil(L);
            lua_rawseti(L, -2, 4);
            lua_pushnil(L);
            lua_rawseti(L, -2, 3);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
