// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QtCore/QVariant>

// A QVariant from a script as a line of text, written the way Lua would:
// nil, true, 42, 2.5, {1, 2}, {key = value}; strings as they are at the top
// level (like print) and quoted inside tables.
QString valueText(const QVariant &value);
