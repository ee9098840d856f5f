// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// A Lua REPL as lua.c has it: a bare expression shows its value, an open
// block waits for more lines (">>"), Up/Down walk the history. Scripts run
// on the isle's thread, side by side: a line that sleeps or waits
// (isle.sleep, tasks, channels) leaves the console free, and a CPU-bound
// one takes turns with the others (timeSlice). Each running job has a row
// with its progress, Pause and Stop; an answer that arrives after later
// lines were typed names its input ("in[3]: ...").
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import QIsle

Item {
    id: root

    // The job of the last line run.
    property Job currentJob: null
    // The jobs still running, in the order they were typed: elements
    // { job, number, text }, number as in in[N].
    readonly property alias jobs: jobModel
    // Lines typed so far of a chunk that is not complete yet.
    property string pending: ""
    property var history: []
    property int historyIndex: 0
    // Inputs run so far: each is a chunk named in[N] in errors and tracebacks.
    property int inputCount: 0
    // Lines fed by feed(), typed one by one as each job ends, or after
    // feedPatience ms if it still runs (a line that sleeps holds no others).
    property var feedQueue: []
    property int feedPatience: 1000
    property Job feedGaveUpOn: null
    readonly property alias output: outputModel
    readonly property alias isle: lua

    // Types a line, as Enter does.
    function submit(line) {
        if (line.trim() !== "") {
            history.push(line)
            historyIndex = history.length
        }
        append(pending === "" ? "> " + line : ">> " + line, "input")
        const text = pending === "" ? line : pending + "\n" + line
        const input = lua.classify(text)
        if (input.kind === "Incomplete") {
            pending = text
            return
        }
        pending = ""
        if (input.kind === "SyntaxError") {
            append("Syntax error at line " + input.line + ": " + input.error, "error")
            return
        }
        if (text.trim() !== "")
            run(input.chunk, text)
    }

    // Types lines one after the other, each once the previous job ended (or
    // ran for feedPatience ms).
    function feed(lines) {
        feedQueue = feedQueue.concat(lines)
        feedNext()
    }

    function feedNext() {
        while (feedQueue.length > 0) {
            const job = currentJob
            if (job && job.running && job !== feedGaveUpOn) {
                if (!feedTimer.running) {
                    feedTimer.job = job
                    feedTimer.restart()
                }
                return
            }
            feedTimer.stop()
            submit(feedQueue.shift())
        }
    }

    function run(chunk, text) {
        const number = ++inputCount
        const job = lua.evaluate(chunk, "=in[" + number + "]")
        currentJob = job
        jobModel.append({ "job": job, "number": number, "text": text })
        // Later lines were typed since: say which input this answer is for.
        const tag = () => number < inputCount ? "in[" + number + "]: " : ""
        job.resultEmitted.connect((index, value) => append(tag() + "emit " + index + ": " + format(value), "emit"))
        job.finished.connect(() => {
            for (let i = 0; i < jobModel.count; ++i) {
                if (jobModel.get(i).number === number) {
                    jobModel.remove(i)
                    break
                }
            }
            if (job.canceled)
                append(tag() + "stopped", "info")
            else if (job.errorKind !== "")
                append(tag() + job.errorKind + " error" + (job.errorLine > 0 ? " at line " + job.errorLine : "")
                       + ": " + job.errorString, "error")
            else if (job.result !== undefined) // nil or no value: nothing, as print() in lua.c
                append(tag() + format(job.result), "result")
            Qt.callLater(root.feedNext)
        })
    }

    Timer {
        id: feedTimer
        property Job job: null
        interval: root.feedPatience
        onTriggered: {
            root.feedGaveUpOn = job
            root.feedNext()
        }
    }

    function format(value) {
        if (value === undefined || value === null)
            return "nil"
        if (typeof value === "string")
            return value
        if (typeof value === "object")
            return JSON.stringify(value)
        return String(value)
    }

    function append(text, kind) {
        outputModel.append({ "line": text, "kind": kind })
    }

    Isle {
        id: lua
        // Side by side: a job that waits lets the others run, and one that
        // computes takes turns every 25 ms while others are ready.
        maxConcurrentRequests: 0
        timeSlice: 25
        onPrinted: text => root.append(text, "print")
        // What scripts may drive, in the GUI thread: the stage's colour, its
        // text, its list and its button (try `ui.stage.color = "tomato"`).
        Component.onCompleted: {
            lua.exposeObject("ui.stage", stage)
            lua.exposeObject("ui.label", stageLabel)
            lua.exposeObject("ui.list", stageList)
            lua.exposeObject("ui.button", stageButton)
        }
    }

    ListModel { id: outputModel }
    ListModel { id: jobModel }

    // ui.list:add(text), ui.list:clear(), ui.list.count
    QtObject {
        id: stageList
        objectName: "stageList"
        readonly property int count: stageItems.count
        function add(text: string) { stageItems.append({ "text": text }) }
        function clear() { stageItems.clear() }
    }
    ListModel { id: stageItems }

    ColumnLayout {
        objectName: "layout"
        anchors.fill: parent
        anchors.margins: 8
        spacing: 6

        // A small stage that scripts drive (ui.*).
        Rectangle {
            id: stage
            objectName: "stage"
            Layout.fillWidth: true
            Layout.preferredHeight: 56
            radius: 4
            color: "#2d2f33"
            RowLayout {
                anchors.fill: parent
                anchors.margins: 8
                spacing: 8
                Label {
                    id: stageLabel
                    objectName: "stageLabel"
                    Layout.preferredWidth: 220
                    elide: Text.ElideRight
                    color: "white"
                    font.pixelSize: 15
                    text: qsTr("ui.label.text = \"...\"")
                }
                ListView {
                    Layout.fillWidth: true
                    Layout.fillHeight: true
                    orientation: ListView.Horizontal
                    spacing: 4
                    clip: true
                    model: stageItems
                    delegate: Rectangle {
                        required property string text
                        height: ListView.view.height
                        width: itemText.implicitWidth + 16
                        radius: 3
                        color: "#3c4043"
                        Text {
                            id: itemText
                            anchors.centerIn: parent
                            color: "#e8eaed"
                            text: parent.text
                        }
                    }
                }
                Button {
                    id: stageButton
                    objectName: "stageButton"
                    text: qsTr("ui.button")
                }
            }
        }

        Rectangle {
            Layout.fillWidth: true
            Layout.fillHeight: true
            color: "#1e1f22"
            radius: 4

            ListView {
                id: view
                anchors.fill: parent
                anchors.margins: 8
                clip: true
                model: outputModel
                ScrollBar.vertical: ScrollBar {}
                onCountChanged: Qt.callLater(positionViewAtEnd)
                delegate: Text {
                    required property string line
                    required property string kind
                    width: ListView.view.width
                    wrapMode: Text.WrapAnywhere
                    font.family: "monospace"
                    font.pixelSize: 14
                    text: line
                    color: kind === "input" ? "#8ab4f8"
                         : kind === "error" ? "#f28b82"
                         : kind === "print" ? "#e8eaed"
                         : kind === "emit" ? "#fdd663"
                         : kind === "info" ? "#9aa0a6" : "#81c995"
                }
            }
        }

        // One row per running job: its input, progress, Pause and Stop.
        ColumnLayout {
            objectName: "jobList"
            Layout.fillWidth: true
            spacing: 2
            visible: jobModel.count > 0
            Repeater {
                model: jobModel
                delegate: RowLayout {
                    id: row
                    required property Job job
                    required property int number
                    required property string text
                    objectName: "job" + number
                    Layout.fillWidth: true
                    Label {
                        text: "in[" + row.number + "]"
                        font.family: "monospace"
                        color: "#8ab4f8"
                        Layout.preferredWidth: 48
                    }
                    Label {
                        text: row.text
                        font.family: "monospace"
                        elide: Text.ElideRight
                        maximumLineCount: 1
                        Layout.preferredWidth: 260
                    }
                    ProgressBar {
                        Layout.fillWidth: true
                        from: 0
                        to: row.job.progressMaximum > 0 ? row.job.progressMaximum : 1
                        value: row.job.progress
                        indeterminate: row.job.running && row.job.progressMaximum === 0
                    }
                    Label {
                        text: row.job.suspended ? qsTr("paused") : row.job.progressText
                        elide: Text.ElideRight
                        Layout.preferredWidth: 120
                    }
                    Button {
                        objectName: "pauseButton"
                        text: row.job.suspended ? qsTr("Resume") : qsTr("Pause")
                        enabled: row.job.running
                        onClicked: row.job.suspended ? row.job.resume() : row.job.suspend()
                    }
                    Button {
                        objectName: "stopButton"
                        text: qsTr("Stop")
                        enabled: row.job.running
                        onClicked: row.job.cancel()
                    }
                }
            }
        }

        RowLayout {
            Layout.fillWidth: true
            Label {
                text: root.pending === "" ? ">" : ">>"
                font.family: "monospace"
                font.pixelSize: 14
            }
            TextField {
                id: input
                objectName: "input"
                Layout.fillWidth: true
                focus: true
                font.family: "monospace"
                font.pixelSize: 14
                placeholderText: qsTr("Lua: an expression, a statement, or the first line of a block")
                onAccepted: {
                    const line = text
                    text = ""
                    root.submit(line)
                }
                Keys.onUpPressed: {
                    if (root.historyIndex > 0)
                        text = root.history[--root.historyIndex]
                }
                Keys.onDownPressed: {
                    if (root.historyIndex < root.history.length - 1)
                        text = root.history[++root.historyIndex]
                    else {
                        root.historyIndex = root.history.length
                        text = ""
                    }
                }
            }
            Label {
                objectName: "status"
                text: jobModel.count > 0 ? qsTr("%n running", "", jobModel.count) : qsTr("idle")
                color: jobModel.count > 0 ? "#e37400" : "#188038"
            }
        }
    }
}
