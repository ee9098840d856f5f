// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/safety_p.h"

#include "lualib/patternguard_p.h"
#include "lualib/stopawarelib_p.h"
#include "luautil/stackguard_p.h"
#include "stop/stopcontrol_p.h"

#include <atomic>
#include <cstring>

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
// as Lua's load/loadfile do. lua_load runs a reader function under a
// protected call of its own: a stop raised in it is raised again.
int finishLoad(lua_State *L, int status, int env)
{
    if (status != LUA_OK) {
        if (StopControl::from(L).stopping())
            lua_error(L); // the stop's error value is on top
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

// Loading keeps Lua's modes and messages ("attempt to load a text chunk
// (mode is 'b')") with one exception: a precompiled chunk never loads. Where
// the mode would let it through, it gets Lua's refusal for text-only mode.
constexpr char TextOnly[] = "t";
constexpr char BinaryRefused[] = "attempt to load a binary chunk (mode is 't')";

// Lua's checkmode: a missing mode means "bt".
bool allows(const char *mode, char kind)
{
    return !mode || std::strchr(mode, kind);
}

constexpr int ReaderSlot = 5; // keeps the reader's last piece alive

struct ReaderState
{
    bool refuseBinary; // the mode allows binary: refuse it here
    bool first = true;
};

// lbaselib.c's generic_reader, plus the look at the first byte.
const char *readPiece(lua_State *L, void *data, size_t *size)
{
    auto *state = static_cast<ReaderState *>(data);
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
    const char *piece = lua_tolstring(L, ReaderSlot, size);
    if (state->first) {
        state->first = false;
        if (state->refuseBinary && *size > 0 && piece[0] == LUA_SIGNATURE[0]) {
            lua_pushstring(L, BinaryRefused);
            lua_error(L);
        }
    }
    return piece;
}

// load(chunk [, chunkname [, mode [, env]]]), as lbaselib.c's luaB_load.
// Written out rather than wrapping the original: an upvalue holding Lua's
// own load would be one debug.getupvalue away from a script.
int load(lua_State *L)
{
    size_t length = 0;
    const char *text = lua_tolstring(L, 1, &length);
    const char *mode = luaL_optstring(L, 3, "bt");
    const int env = lua_isnone(L, 4) ? 0 : 4;
    int status;
    if (text) {
        const char *chunkName = luaL_optstring(L, 2, text);
        const bool binary = length > 0 && text[0] == LUA_SIGNATURE[0];
        status = luaL_loadbufferx(L, text, length, chunkName, binary && allows(mode, 'b') ? TextOnly : mode);
    } else {
        const char *chunkName = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        lua_settop(L, ReaderSlot);
        ReaderState state{allows(mode, 'b')};
        status = lua_load(L, readPiece, &state, chunkName, mode);
    }
    return finishLoad(L, status, env);
}

// luaL_loadfilex with Lua's modes and messages, a precompiled file refused.
int loadFile(lua_State *L, const char *filename, const char *mode)
{
    if (!allows(mode, 'b'))
        return luaL_loadfilex(L, filename, mode); // Lua refuses a binary file itself
    if (allows(mode, 't'))
        return luaL_loadfilex(L, filename, TextOnly);
    // Binary only: Lua refuses a text file before parsing it. Only loading
    // it as text tells a text file (loads, or a syntax error) from a binary
    // one (refused) or one that cannot be read (Lua's message either way).
    const int status = luaL_loadfilex(L, filename, TextOnly);
    if (status == LUA_OK || (status == LUA_ERRSYNTAX && std::strcmp(lua_tostring(L, -1), BinaryRefused) != 0)) {
        lua_pop(L, 1);
        lua_pushfstring(L, "attempt to load a text chunk (mode is '%s')", mode);
        return LUA_ERRSYNTAX;
    }
    return status;
}

// package.searchpath, Lua's own (the script may replace the field; Lua's
// searcher keeps using its C function).
std::atomic<lua_CFunction> luaSearchpath{nullptr};

// package.searchers[2] as loadlib.c's searcher_Lua, with loadFile. Upvalue 1:
// package (as Lua's).
int searchLuaText(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "path");
    const char *path = lua_tostring(L, -1);
    if (!path)
        return luaL_error(L, "'package.%s' must be a string", "path");
    lua_pushcfunction(L, luaSearchpath.load(std::memory_order_relaxed));
    lua_pushvalue(L, 1);
    lua_pushstring(L, path);
    lua_call(L, 2, 2); // filename | nil, message
    if (lua_isnil(L, -2))
        return 1; // "no file ..." for require's message
    lua_pop(L, 1);
    const char *filename = lua_tostring(L, -1);
    if (loadFile(L, filename, nullptr) != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename,
                          lua_tostring(L, -1));
    lua_insert(L, -2);
    return 2; // loader, filename
}

// loadfile([filename [, mode [, env]]]), as lbaselib.c's luaB_loadfile.
int loadfile(lua_State *L)
{
    const char *filename = luaL_optstring(L, 1, nullptr);
    const char *mode = luaL_optstring(L, 2, nullptr);
    const int env = lua_isnone(L, 3) ? 0 : 3;
    return finishLoad(L, loadFile(L, filename, mode), env);
}

int dofileContinuation(lua_State *L, int, lua_KContext)
{
    return lua_gettop(L) - 1;
}

// dofile([filename]), as lbaselib.c's luaB_dofile.
int dofile(lua_State *L)
{
    const char *filename = luaL_optstring(L, 1, nullptr);
    lua_settop(L, 1);
    if (loadFile(L, filename, nullptr) != LUA_OK)
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
    // The libraries fill _G and package.loaded, which Lua would grow a
    // power of two at a time (a rehash each, the outgrown parts freed):
    // made at about their final size at once (a fresh state's empty _G is
    // replaced; issue 18, rows 7e and 7f).
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushnil(L);
    if (lua_next(L, -2) == 0) {
        lua_createtable(L, 0, 40);
        lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    } else {
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TNIL) {
        lua_createtable(L, 0, 12);
        lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    }
    lua_pop(L, 1);
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
    replaceGlobal(L, "load", load);
    // pcall, xpcall, coroutine.resume/wrap never swallow a stop.
    StopAwareLib::install(L);
    // Pattern matching runs in C: make a backtracking search stoppable.
    PatternGuard::install(L);
    if (libraries.testFlag(O::Io) || libraries.testFlag(O::Os) || libraries.testFlag(O::Package)) {
        replaceGlobal(L, "loadfile", loadfile);
        replaceGlobal(L, "dofile", dofile);
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
        lua_getfield(L, -1, "searchpath");
        if (const lua_CFunction searchpath = lua_tocfunction(L, -1))
            luaSearchpath.store(searchpath, std::memory_order_relaxed);
        lua_pop(L, 1);
        if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
            // 1: preload, 2: Lua files (made text-only); 3 and 4 load C libraries.
            if (luaSearchpath.load(std::memory_order_relaxed)) {
                lua_pushvalue(L, -2);
                lua_pushcclosure(L, searchLuaText, 1);
            } else {
                lua_pushnil(L); // no Lua searcher rather than one that loads bytecode
            }
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
