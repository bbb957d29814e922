/** Transport references and image names, checked against what skopeo accepts and completes. */
import { describe, expect, test } from "bun:test";
import { formatImageName, normalizeDockerName, normalizeLocalName, parseImageName } from "../../src/transports/names.ts";
import { formatReference, parseReference } from "../../src/transports/reference.ts";
import { openSource } from "../../src/transports/index.ts";

describe("parseReference", () => {
  test("oci and oci-archive: the path ends at the first colon, the rest is the ref", () => {
    expect(parseReference("oci:/tmp/l:v1")).toEqual({ transport: "oci", path: "/tmp/l", ref: "v1" });
    expect(parseReference("oci:/tmp/l")).toEqual({ transport: "oci", path: "/tmp/l" });
    expect(parseReference("oci-archive:a.tar:foo/bar:1.0")).toEqual({ transport: "oci-archive", path: "a.tar", ref: "foo/bar:1.0" });
    expect(() => parseReference("oci:/tmp/l:bad ref")).toThrow('"bad ref" is not a valid OCI ref name');
    expect(() => parseReference("oci::x")).toThrow("the path is empty");
  });
  test("docker-archive: NAME:TAG completed as docker does, or @INDEX", () => {
    expect(formatReference(parseReference("docker-archive:a.tar:foo:bar"))).toBe("docker-archive:a.tar:docker.io/library/foo:bar");
    expect(parseReference("docker-archive:a.tar:@2")).toEqual({ transport: "docker-archive", path: "a.tar", index: 2 });
    expect(parseReference("docker-archive:a.tar")).toEqual({ transport: "docker-archive", path: "a.tar" });
    expect(() => parseReference("docker-archive:a.tar:foo")).toThrow("needs a tag");
    expect(() => parseReference("docker-archive:a.tar:@x")).toThrow("is not an image index");
  });
  test("docker:// is parsed into a completed name, as docker and podman complete it", async () => {
    const reference = parseReference("docker://localhost:5000/app@sha256:" + "a".repeat(64));
    expect(reference).toEqual({ transport: "docker", name: { domain: "localhost:5000", path: "app", digest: "sha256:" + "a".repeat(64) } });
    expect(formatReference(parseReference("docker://alpine"))).toBe("docker://docker.io/library/alpine:latest");
    expect(() => parseReference("docker:alpine")).toThrow("expected docker://NAME");
    const source = await openSource("docker://alpine", { registry: { creds: "u:p" } });
    expect(source.description).toBe("docker://docker.io/library/alpine:latest");
    expect(source.imageNames()).toEqual(["docker.io/library/alpine:latest"]);
    await source.close();
  });
  test("dir: takes everything after the transport as its path", () => {
    expect(parseReference("dir:/x:y")).toEqual({ transport: "dir", path: "/x:y" });
    expect(formatReference(parseReference("dir:rel/d"))).toBe("dir:rel/d");
    expect(() => parseReference("dir:")).toThrow("the path is empty");
  });
  test("unknown transports are named", () => {
    expect(() => parseReference("containers-storage:x")).toThrow('unknown transport "containers-storage"');
    expect(() => parseReference("/x")).toThrow("expected TRANSPORT:DETAILS");
  });
});

describe("image names", () => {
  test("podman's local completion: a bare or domain-less name goes under localhost/, a tag defaults to latest", () => {
    expect(formatImageName(normalizeLocalName("app"))).toBe("localhost/app:latest");
    expect(formatImageName(normalizeLocalName("app:v1"))).toBe("localhost/app:v1");
    expect(formatImageName(normalizeLocalName("library/app"))).toBe("localhost/library/app:latest");
    expect(formatImageName(normalizeLocalName("quay.io/x/app:2"))).toBe("quay.io/x/app:2");
    expect(formatImageName(normalizeLocalName("localhost:5000/app"))).toBe("localhost:5000/app:latest");
  });
  test("docker completion (skopeo's containers-storage: and docker-archive: names)", () => {
    expect(formatImageName(normalizeDockerName("app"))).toBe("docker.io/library/app:latest");
    expect(formatImageName(normalizeDockerName("me/app:1"))).toBe("docker.io/me/app:1");
  });
  test("invalid names are refused with the reason", () => {
    expect(() => parseImageName("App")).toThrow("is not a valid repository name component");
    expect(() => parseImageName("app:bad tag")).toThrow("is not a valid tag");
    expect(() => parseImageName("")).toThrow("the repository name is empty");
  });
});
