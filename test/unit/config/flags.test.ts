import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configurationFlags, registryFlags } from '../../../src/main/config/commands.js';
import { parseFlags, renderHelp } from '../../../src/main/config/flag.js';
import { parseByteSize, parseDuration } from '../../../src/main/config/values.js';
import { ConfigError } from '../../../src/main/errors.js';

const parse = (argv: string[], env: Record<string, string> = {}) =>
  parseFlags(registryFlags, argv, env).values;

describe('registry flags', () => {
  it('has Spegel-compatible defaults', () => {
    const config = parse([]);
    assert.deepEqual(config.registryAddr, { host: undefined, port: 5000 });
    assert.deepEqual(config.routerAddr, { host: undefined, port: 5001 });
    assert.deepEqual(config.metricsAddr, { host: undefined, port: 9090 });
    assert.equal(config.containerdNamespace, 'k8s.io');
    assert.equal(config.mirrorResolveTimeout, 20);
    assert.equal(config.mirrorResolveRetries, 3);
    assert.equal(config.store, 'auto');
    assert.equal(config.logLevel, 'info');
    // Regression (issue 26): the default was 0, no bound, so any pod could fill the node's disk.
    assert.deepEqual(config.cacheMaxBytes, { share: 0.1 });
    assert.ok(Object.isFrozen(config));
  });

  it('takes --flag value, --flag=value, and env vars, flags winning', () => {
    const config = parse(['--registry-addr', '127.0.0.1:6000', '--mirror-resolve-timeout=1s'], {
      REGISTRY_ADDR: ':7000',
      CONTAINERD_NAMESPACE: 'other',
    });
    assert.deepEqual(config.registryAddr, { host: '127.0.0.1', port: 6000 });
    assert.equal(config.mirrorResolveTimeout, 1000);
    assert.equal(config.containerdNamespace, 'other');
  });

  it('collects lists from repeats, commas and following words', () => {
    const config = parse([
      '--mirrored-registries',
      'https://docker.io',
      'http://127.0.0.1:5000',
      '--registry-filters=:latest$,^ghcr',
      '--mirrored-registries=https://ghcr.io',
    ]);
    assert.deepEqual(
      config.mirroredRegistries.map((url) => url.host),
      ['docker.io', '127.0.0.1:5000', 'ghcr.io'],
    );
    assert.equal(config.registryFilters.length, 2);
    assert.ok(config.registryFilters[0]?.test('docker.io/x:latest'));
  });

  it('parses booleans bare and with =false', () => {
    const flags = (argv: string[]) => parseFlags(configurationFlags, argv, {}).values;
    assert.equal(flags([]).resolveTags, true);
    assert.equal(flags(['--resolve-tags=false']).resolveTags, false);
    assert.equal(flags(['--prepend-existing']).prependExisting, true);
  });

  const bad: Array<[string[], RegExp]> = [
    [['--nope'], /^--nope: unknown flag/],
    [['--registry-addr'], /^--registry-addr: missing value/],
    [['--registry-addr', 'localhost'], /^--registry-addr: invalid address/],
    [['--registry-addr', ':70000'], /^--registry-addr: invalid address/],
    [['--mirror-resolve-timeout', '20'], /^--mirror-resolve-timeout: invalid duration/],
    [['--mirror-resolve-timeout', '1x'], /^--mirror-resolve-timeout: invalid duration/],
    [['--mirror-resolve-retries', '-1'], /^--mirror-resolve-retries: expected a whole number/],
    [['--registry-filters', '(unclosed'], /^--registry-filters: invalid regular expression/],
    [['--mirrored-registries', 'docker.io'], /^--mirrored-registries: invalid URL/],
    [['--mirrored-registries', 'ftp://x'], /^--mirrored-registries: expected http/],
    [['--store', 'disk'], /^--store: expected one of/],
    [['--log-level', 'loud'], /^--log-level: expected one of/],
    [['--default-registry', 'not a host'], /^--default-registry: invalid registry host/],
  ];
  for (const [argv, message] of bad) {
    it(`rejects ${argv.join(' ')} naming the flag`, () => {
      assert.throws(
        () => parse(argv),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    });
  }

  // The init container's template is `http://[$(NODE_IP)]:5000`: the kubelet puts either family in it.
  it('takes mirror targets with an IPv6 host, and with an IPv4 host in brackets', () => {
    const targets = (value: string) =>
      parseFlags(configurationFlags, [], { MIRROR_TARGETS: value }).values.mirrorTargets.map(
        (url) => url.origin,
      );
    assert.deepEqual(targets('http://[fd00::1]:5000'), ['http://[fd00::1]:5000']);
    assert.deepEqual(targets('http://[10.1.2.3]:5000'), ['http://10.1.2.3:5000']);
    assert.deepEqual(targets('https://[2001:db8::7]:5443,http://[127.0.0.1]:5000'), [
      'https://[2001:db8::7]:5443',
      'http://127.0.0.1:5000',
    ]);
    // Unbracketed, an IPv6 address cannot be told from its port: refused, naming the flag.
    assert.throws(
      () => targets('http://fd00::1:5000'),
      (err: unknown) => err instanceof ConfigError && /^--mirror-targets: invalid URL/.test(err.message),
    );
    assert.throws(
      () => targets('http://[10.1.2]:5000'),
      (err: unknown) => err instanceof ConfigError && /^--mirror-targets: invalid URL/.test(err.message),
    );
  });

  it('names the env var when the bad value came from one', () => {
    assert.throws(
      () => parse([], { MIRROR_RESOLVE_RETRIES: 'x' }),
      /--mirror-resolve-retries: .*\(from \$MIRROR_RESOLVE_RETRIES\)/,
    );
  });

  it('renders help with every flag, env var and default', () => {
    const help = renderHelp('Usage: shoal registry', registryFlags);
    for (const flag of [
      '--registry-addr',
      '--containerd-sock',
      '--mirror-resolve-timeout',
      '--store',
      '--log-level',
    ]) {
      assert.match(help, new RegExp(flag));
    }
    assert.match(help, /\[\$MIRROR_RESOLVE_TIMEOUT\]/);
    assert.match(help, /default 20ms/);
  });
});

describe('parseDuration', () => {
  it('reads Go-style durations', () => {
    assert.equal(parseDuration('20ms', 'x'), 20);
    assert.equal(parseDuration('1.5s', 'x'), 1500);
    assert.equal(parseDuration('1m30s', 'x'), 90_000);
    assert.equal(parseDuration('0', 'x'), 0);
  });
});

describe('parseByteSize', () => {
  it('reads bytes, units and shares of the disk', () => {
    assert.deepEqual(parseByteSize('0', 'x'), { bytes: 0 });
    assert.deepEqual(parseByteSize('1048576', 'x'), { bytes: 1 << 20 });
    assert.deepEqual(parseByteSize('500Mi', 'x'), { bytes: 500 * 2 ** 20 });
    assert.deepEqual(parseByteSize('20GiB', 'x'), { bytes: 20 * 2 ** 30 });
    assert.deepEqual(parseByteSize('2G', 'x'), { bytes: 2e9 });
    assert.deepEqual(parseByteSize('1.5k', 'x'), { bytes: 1500 });
    assert.deepEqual(parseByteSize('10%', 'x'), { share: 0.1 });
    assert.deepEqual(parseByteSize('100%', 'x'), { share: 1 });
  });

  it('refuses anything else, naming the flag', () => {
    for (const bad of ['', '-1', '0%', '101%', '10 %', '5XB', 'lots', '1e3', '99999999999999999999'])
      assert.throws(
        () => parseByteSize(bad, 'cache-max-bytes'),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, /^--cache-max-bytes: /);
          return true;
        },
      );
  });
});
