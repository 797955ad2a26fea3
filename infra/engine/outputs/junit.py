"""JUnit XML for CI test views: one test case per rule without findings (passed), per finding
(failed, or skipped when suppressed) and per unit not checked (error).

Schema: schemas/junit/JUnit.xsd (windyroad/JUnit-Schema, the Apache Ant JUnit report format).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

from infra.engine.outputs import Output, every_finding, now, output
from infra.engine.rules import RULES


class Junit(Output):
    name, help, order = "junit", "JUnit XML (Ant JUnit report schema) for CI test views", 12
    schema = "schemas/junit/JUnit.xsd"

    def render(self, report, docs) -> str:
        findings = every_finding(report)
        suite = ET.Element("testsuite", {
            "package": "residency", "id": "0", "name": f"residency-{report.stack}-{report.source or 'audit'}",
            "timestamp": now().strftime("%Y-%m-%dT%H:%M:%S"), "hostname": socket.gethostname() or "localhost",
            "time": "0"})
        properties = ET.SubElement(suite, "properties")
        for name, value in (("stack", report.stack or ""), ("geography", report.geography),
                            ("account", report.account), ("source", report.source)):
            ET.SubElement(properties, "property", {"name": name, "value": value or ""})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

        def case(classname: str, name: str) -> ET.Element:
            counts["tests"] += 1
            return ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})

        for rule in RULES:
            mine = [f for f in findings if f.rule == rule.id]
            if not mine:
                case(f"{rule.id} {rule.name}", "no findings")
            for f in mine:
                tc = case(f"{rule.id} {rule.name}", f.urn)
                if f.suppressed:
                    counts["skipped"] += 1
                    ET.SubElement(tc, "skipped", {"message": f"suppressed: {f.suppressed.reason} (owner "
                                                             f"{f.suppressed.owner}, until {f.suppressed.expires})"})
                else:
                    counts["failures"] += 1
                    ET.SubElement(tc, "failure", {"type": rule.severity, "message": f.message}).text = (
                        f"{f.title}\n{f.type}\n{f.urn}\n{f.message}")
        for n in report.not_checked:
            tc = case("not checked", f"{n['service']} in {n['region']}" +
                      (f" of {n['account']}" if n.get("account") else ""))
            counts["errors"] += 1
            ET.SubElement(tc, "error", {"type": n.get("kind") or "not checked", "message": n["reason"]})
        ET.SubElement(suite, "system-out").text = "\n".join(report.notes)
        ET.SubElement(suite, "system-err")
        for key, value in counts.items():
            suite.set(key, str(value))
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


output(Junit)
