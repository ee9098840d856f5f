// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/safety_p.h"

#include "lualib/patternguard_p.h"
#include "luautil/stackguard_p.h"

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

// Sets the loaded chunk's first upvalue (_ENV) to the value at env, if any,
// as Lua's load/loadfile do.
int finishLoad(lua_State *L, int status, int env)
{
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2; // nil, message
    }
    if (env != 0) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

constexpr int ReaderSlot = 5; // keeps the reader's last piece alive

const char *readPiece(lua_State *L, void *, size_t *size)
{
    luaL_checkstack(L, 2, "too many nested functions");
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        *size = 0;
        return nullptr;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "reader function must return a string");
    lua_replace(L, ReaderSlot);
    return lua_tolstring(L, ReaderSlot, size);
}

// load(chunk [, chunkname [, mode [, env]]]) with mode forced to text. Written
// out rather than wrapping the original: an upvalue holding Lua's own load
// would be one debug.getupvalue away from a script.
int textOnlyLoad(lua_State *L)
{
    size_t length = 0;
    const char *text = lua_tolstring(L, 1, &length);
    luaL_optstring(L, 3, "t"); // checked like Lua does, then ignored
    const int env = lua_isnone(L, 4) ? 0 : 4;
    int status;
    if (text) {
        const char *chunkName = luaL_optstring(L, 2, text);
        status = luaL_loadbufferx(L, text, length, chunkName, "t");
    } else {
        const char *chunkName = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        lua_settop(L, ReaderSlot);
        status = lua_load(L, readPiece, nullptr, chunkName, "t");
    }
    return finishLoad(L, status, env);
}

// package.searchers[2] with text-only loading: Lua's own uses
// luaL_loadfile, which accepts precompiled files. Upvalue 1: package.
int searchLuaText(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "searchpath");
    lua_pushvalue(L, 1);
    if (lua_getfield(L, lua_upvalueindex(1), "path") != LUA_TSTRING)
        return luaL_error(L, "'package.path' must be a string");
    lua_call(L, 2, 2); // filename | nil, message
    if (lua_isnil(L, -2))
        return 1; // "no file ..." for require's message
    lua_pop(L, 1);
    const char *filename = lua_tostring(L, -1);
    if (luaL_loadfilex(L, filename, "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename,
                          lua_tostring(L, -1));
    lua_insert(L, -2);
    return 2; // loader, filename
}

// loadfile(filename [, mode [, env]]) with mode forced to text.
int textOnlyLoadfile(lua_State *L)
{
    const char *filename = luaL_optstring(L, 1, nullptr);
    const int env = lua_isnone(L, 3) ? 0 : 3;
    return finishLoad(L, luaL_loadfilex(L, filename, "t"), env);
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

// Replaces a global that the opened libraries define; leaves absent ones absent.
void replaceGlobal(lua_State *L, const char *name, lua_CFunction replacement)
{
    StackGuard guard(L);
    const bool present = lua_getglobal(L, name) != LUA_TNIL;
    lua_pop(L, 1);
    if (present) {
        lua_pushcfunction(L, replacement);
        lua_setglobal(L, name);
    }
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
    // debug.debug() reads the host's stdin: it would block the VM for good.
    disable(L, LUA_DBLIBNAME, "debug");
    replaceGlobal(L, "load", textOnlyLoad);
    // Pattern matching runs in C: make a backtracking search stoppable.
    PatternGuard::install(L);
    if (libraries.testFlag(O::Io) || libraries.testFlag(O::Os) || libraries.testFlag(O::Package)) {
        replaceGlobal(L, "loadfile", textOnlyLoadfile);
        replaceGlobal(L, "dofile", textOnlyDofile);
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
            // 1: preload, 2: Lua files (made text-only); 3 and 4 load C libraries.
            lua_pushvalue(L, -2);
            lua_pushcclosure(L, searchLuaText, 1);
            lua_rawseti(L, -2, 2);
            lua_pushnil(L);
            lua_rawseti(L, -2, 4);
            lua_pushnil(L);
            lua_rawseti(L, -2, 3);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
