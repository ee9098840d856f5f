// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
import QtQuick
import QtQuick.Controls

ApplicationWindow {
    id: window
    // Lines typed into the console at start (--run).
    property var startupLines: []

    width: 900
    height: 560
    visible: true
    title: qsTr("QIsle console — Lua 5.4 on its own thread")

    Console {
        id: console_
        anchors.fill: parent
        Component.onCompleted: console_.feed(window.startupLines)
    }
}
