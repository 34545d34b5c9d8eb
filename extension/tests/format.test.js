import { describe, expect, it } from "vitest";
import { bytes, count, duration, rate } from "../src/lib/format.js";

describe("format", () => {
  it("bytes in binary units", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.50 KiB");
    expect(bytes(50 * 1024 * 1024)).toBe("50.0 MiB");
    expect(bytes(null)).toBe("–");
  });
  it("durations switch units", () => {
    expect(duration(0.25)).toBe("250 µs");
    expect(duration(12.345)).toBe("12.3 ms");
    expect(duration(2500)).toBe("2.50 s");
  });
  it("counts and rates", () => {
    expect(count(1234567)).toBe("1,234,567");
    expect(rate(3.14159)).toBe("3.1/s");
    expect(rate(120)).toBe("120/s");
  });
});
