/*
 * sdrencrypt encrypts each argument after the first with NSS's secret
 * decoder ring (PK11SDR_Encrypt), the way Thunderbird's password manager
 * encrypts the user name and password it keeps in logins.json, using the
 * key database of the profile named by the first argument. It prints one
 * line of hex per argument. Without a primary password the SDR key is
 * created on first use, as Thunderbird does.
 *
 * Build: gcc -o sdrencrypt sdrencrypt.c -l:libnss3.so
 * (libnss3 from Debian's libnss3; no development headers needed: the few
 * NSS declarations used are repeated below from nss.h, pk11pub.h and
 * pk11sdr.h.)
 */
#include <stdio.h>
#include <string.h>

typedef enum { siBuffer = 0 } SECItemType;
typedef struct {
	SECItemType type;
	unsigned char *data;
	unsigned int len;
} SECItem;
typedef int SECStatus; /* SECSuccess = 0 */
typedef struct PK11SlotInfoStr PK11SlotInfo;

extern SECStatus NSS_InitReadWrite(const char *configdir);
extern SECStatus NSS_Shutdown(void);
extern PK11SlotInfo *PK11_GetInternalKeySlot(void);
extern int PK11_NeedUserInit(PK11SlotInfo *slot);
extern SECStatus PK11_InitPin(PK11SlotInfo *slot, const char *ssopw, const char *pk11_userpwd);
extern void PK11_FreeSlot(PK11SlotInfo *slot);
extern SECStatus PK11SDR_Encrypt(SECItem *keyid, SECItem *data, SECItem *result, void *cx);
extern int PORT_GetError(void);

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: sdrencrypt sql:PROFILE TEXT...\n");
		return 2;
	}
	if (NSS_InitReadWrite(argv[1]) != 0) {
		fprintf(stderr, "sdrencrypt: NSS_InitReadWrite %s: NSS error %d\n", argv[1], PORT_GetError());
		return 1;
	}
	PK11SlotInfo *slot = PK11_GetInternalKeySlot();
	if (slot == NULL) {
		fprintf(stderr, "sdrencrypt: no internal key slot: NSS error %d\n", PORT_GetError());
		return 1;
	}
	/* A new database has no password yet; an empty one is what
	 * Thunderbird sets when no primary password is chosen. */
	if (PK11_NeedUserInit(slot) && PK11_InitPin(slot, "", "") != 0) {
		fprintf(stderr, "sdrencrypt: init empty password: NSS error %d\n", PORT_GetError());
		return 1;
	}
	PK11_FreeSlot(slot);
	for (int i = 2; i < argc; i++) {
		SECItem keyid = {siBuffer, NULL, 0};
		SECItem data = {siBuffer, (unsigned char *)argv[i], (unsigned int)strlen(argv[i])};
		SECItem out = {siBuffer, NULL, 0};
		if (PK11SDR_Encrypt(&keyid, &data, &out, NULL) != 0) {
			fprintf(stderr, "sdrencrypt: encrypt argument %d: NSS error %d\n", i - 1, PORT_GetError());
			return 1;
		}
		for (unsigned int j = 0; j < out.len; j++)
			printf("%02x", out.data[j]);
		printf("\n");
	}
	if (NSS_Shutdown() != 0) {
		fprintf(stderr, "sdrencrypt: NSS_Shutdown: NSS error %d\n", PORT_GetError());
		return 1;
	}
	return 0;
}
