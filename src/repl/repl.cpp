// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include <QIsle/qislerepl.h>

#include <QIsle/QIsleLua>

#include <memory>

namespace {

constexpr char ChunkName[] = "=input";
constexpr QLatin1String ChunkPrefix("input:");
// lua.c's marker: the parser stopped at the end of the text.
constexpr QLatin1String EofMark("<eof>");

struct StateCloser
{
    void operator()(lua_State *L) const { lua_close(L); }
};

// Compiles text (text mode only) and returns Lua's status; the message, if
// any, is left in *message.
int compile(lua_State *L, const QByteArray &text, QString *message)
{
    const int status = luaL_loadbufferx(L, text.constData(), size_t(text.size()), ChunkName, "t");
    if (status != LUA_OK && message) {
        size_t length = 0;
        const char *m = lua_tolstring(L, -1, &length);
        *message = m ? QString::fromUtf8(m, qsizetype(length)) : QString();
    }
    lua_settop(L, 0);
    return status;
}

} // namespace

QIsleReplInput qisleClassifyInput(const QString &input)
{
    using Kind = QIsleReplInput::Kind;
    // Never run: only the parser is used, and a fresh state keeps the
    // caller's VM (on another thread) out of it.
    std::unique_ptr<lua_State, StateCloser> state(luaL_newstate());
    lua_State *L = state.get();
    if (!L)
        return {Kind::SyntaxError, input, QStringLiteral("not enough memory"), -1};

    // luaL_loadbufferx is a protected call: syntax and memory errors come
    // back as a status, never as an exception.
    const QString asReturn = QStringLiteral("return ") + input;
    QString returnMessage;
    const int returnStatus = compile(L, asReturn.toUtf8(), &returnMessage);
    if (returnStatus == LUA_OK)
        return {Kind::Expression, asReturn, {}, -1};

    QString message;
    const int status = compile(L, input.toUtf8(), &message);
    if (status == LUA_OK)
        return {Kind::Statements, input, {}, -1};
    // lua.c looks at the statements' error only; an expression cut short
    // ("1 +") only shows as one in the `return` form.
    if (status == LUA_ERRSYNTAX
        && (message.endsWith(EofMark) || (returnStatus == LUA_ERRSYNTAX && returnMessage.endsWith(EofMark))))
        return {Kind::Incomplete, input, message, -1};

    int line = -1;
    // "input:3: message near 'x'": the position moves into line.
    if (message.startsWith(ChunkPrefix)) {
        const qsizetype colon = message.indexOf(QLatin1Char(':'), ChunkPrefix.size());
        bool ok = false;
        const int n = message.mid(ChunkPrefix.size(), colon - ChunkPrefix.size()).toInt(&ok);
        if (colon > 0 && ok) {
            line = n;
            message = message.mid(colon + 1).trimmed();
        }
    }
    return {Kind::SyntaxError, input, message, line};
}
