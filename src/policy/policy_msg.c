/*
 * policy_msg.c - the text the policy module writes for people: values
 * quoted safely into messages and deny reasons built in a bounded buffer.
 * (The "NAME:LINE: message" problems of a policy text are collected in a
 * common/errlist.h list, sorted by line before they are written, so checks
 * that can only run at the end of a text still appear in line order.)
 *
 * Everything taken from a request or a policy text reaches a message only
 * through policy_quote(), which caps it at 64 bytes and escapes anything
 * that is not printable ASCII.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"
#include "policy/policy_int.h"

const char *
policy_quote(const char *s, char q, char *out, size_t outlen)
{
	size_t i, j = 0;
	unsigned char ch;

	/* Worst case: 2 quotes + 64 * 4 + "..." + NUL. */
	if (outlen < 2 * 1 + POLICY_SHOW_MAX * 4 + 3 + 1) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	if (q != '\0')
		out[j++] = q;
	for (i = 0; i < POLICY_SHOW_MAX && s[i] != '\0'; i++) {
		ch = (unsigned char)s[i];
		if ((q != '\0' && ch == (unsigned char)q) || ch == '\\') {
			out[j++] = '\\';
			out[j++] = (char)ch;
		} else if (ch >= 0x20 && ch < 0x7f) {
			out[j++] = (char)ch;
		} else {
			out[j++] = '\\';
			out[j++] = 'x';
			bs_hex_encode(&ch, 1, out + j);
			j += 2;
		}
	}
	if (q != '\0')
		out[j++] = q;
	if (s[i] != '\0') {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

void
policy_sb_printf(struct policy_sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->len + 1 >= sb->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->b + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sb->cap - sb->len) {
		sb->len = sb->cap - 1;
		if (sb->cap >= 4)
			memcpy(sb->b + sb->cap - 4, "...", 4);
	} else
		sb->len += (size_t)n;
}
