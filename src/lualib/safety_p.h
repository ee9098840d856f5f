// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisleoptions.h>

#include <QIsle/QIsleLua>

// What a script may reach (see README, "Safety"). Whatever the preset, a
// script can never end the host process, load a precompiled chunk or take the
// cancel hook away.
namespace Safety {

// Opens the libraries in `libraries` and disarms what must never run.
void openLibraries(lua_State *L, QIsleOptions::Libraries libraries);

} // namespace Safety
