"""Turkish and English text for the server's pages. Every string a person reads is here."""

from __future__ import annotations

LANGUAGES = ("tr", "en")
DEFAULT_LANGUAGE = "tr"

TEXT: dict[str, dict[str, str]] = {
    "site_name": {"tr": "Kalkan", "en": "Kalkan"},
    "quick_exit": {"tr": "Hızlı çıkış", "en": "Quick exit"},
    # The quick exit's one line under its name (base.html); the keys only where there is a keyboard.
    "quick_exit_hint": {"tr": "Bu siteden hemen çıkar", "en": "Leaves this site at once"},
    "quick_exit_keys": {"tr": "ya da Esc tuşuna iki kez basın", "en": "or press Esc twice"},
    "other_language": {"tr": "English", "en": "Türkçe"},
    "landing_title": {"tr": "Mahrem görüntülerinizin paylaşılmasını durdurun",
                      "en": "Stop your intimate images being shared"},
    "landing_lead": {
        "tr": "Fotoğraflarınızın ve videolarınızın parmak izi (hash) bu cihazda hesaplanır. "
              "Görüntüler cihazınızdan hiç çıkmaz ve kimse onları görmez; yalnızca parmak izleri gönderilir.",
        "en": "Your photos and videos are fingerprinted (hashed) on this device. The images never leave it "
              "and nobody sees them; only the fingerprints are sent.",
    },
    "landing_case_link": {"tr": "Mevcut bir başvuruyu görüntüleyin", "en": "Check an existing case"},
    # A helpline's referral link (/r/CODE, server/referrals.py) and its figures page.
    "referral_sent_you": {"tr": "Sizi yönlendiren kuruluş: {name}", "en": "{name} sent you here."},
    "referral_call": {"tr": "Onlara her zaman yeniden ulaşabilirsiniz:", "en": "You can always call them again:"},
    "referral_stats_title": {"tr": "Yönlendirmeleriniz", "en": "Your referrals"},
    "referral_stats_lead": {
        "tr": "Bu sayfa, kodunuzla açılan başvuruların haftalık sayısını gösterir. Hiçbir başvuru numarası, "
              "parmak izi ya da tek bir başvurunun durumu gösterilmez; 3'ten az olan sayılar gizlenir.",
        "en": "This page shows how many cases were opened with your code each week. No case number, fingerprint "
              "or state of a single case is ever shown; counts below 3 are hidden."},
    "referral_stats_key": {"tr": "Anahtarınız", "en": "Your key"},
    "referral_stats_show": {"tr": "Sayıları göster", "en": "Show the figures"},
    "referral_stats_wrong": {"tr": "Bu kod ve anahtarla eşleşen bir kayıt yok. İkisini de kontrol edip yeniden deneyin.",
                             "en": "No referral code matches this key. Check both and try again."},
    "referral_stats_week": {"tr": "Hafta", "en": "Week"},
    "referral_stats_cases": {"tr": "Açılan başvuru", "en": "Cases opened"},
    "referral_stats_week_label": {"tr": "{year}, {week}. hafta", "en": "{year}, week {week}"},
    "referral_stats_fewer": {"tr": "3'ten az", "en": "fewer than 3"},
    "case_title": {"tr": "Başvurunuz", "en": "Your case"},
    "case_lookup_lead": {"tr": "Başvuru numaranızı ve PIN'inizi girin.",
                         "en": "Enter your case number and PIN."},
    "case_number": {"tr": "Başvuru numarası", "en": "Case number"},
    "pin": {"tr": "PIN", "en": "PIN"},
    "show_case": {"tr": "Başvuruyu göster", "en": "Show case"},
    "status": {"tr": "Durum", "en": "Status"},
    "status_active": {"tr": "Etkin: platformlar bu parmak izlerini arıyor",
                      "en": "Active: platforms are looking for these fingerprints"},
    "status_withdrawn": {"tr": "Geri çekildi", "en": "Withdrawn"},
    "created_at": {"tr": "Oluşturulma", "en": "Created"},
    "hashes": {"tr": "Parmak izleri", "en": "Fingerprints"},
    "outcomes": {"tr": "Platformlardan gelen sonuçlar", "en": "What platforms did"},
    "no_outcomes": {"tr": "Henüz bir platformdan sonuç gelmedi.", "en": "No platform has reported back yet."},
    # What a platform reported (server/outcomes.py): {found} and {changed} are dates.
    "outcome_under_review": {"tr": "{found} tarihinde bulundu, inceleniyor",
                             "en": "found on {found}, under review"},
    "outcome_removed": {"tr": "{found} tarihinde bulundu, {changed} tarihinde kaldırıldı",
                        "en": "found on {found}, removed on {changed}"},
    "outcome_not_removed": {"tr": "{found} tarihinde bulundu, {changed} tarihinde incelendi, kaldırılmadı",
                            "en": "found on {found}, reviewed on {changed}, not removed"},
    # ... when both happened on the same day
    "outcome_removed_same_day": {"tr": "{changed} tarihinde bulundu ve kaldırıldı",
                                 "en": "found and removed on {changed}"},
    "outcome_not_removed_same_day": {"tr": "{changed} tarihinde bulundu, incelendi, kaldırılmadı",
                                     "en": "found and reviewed on {changed}, not removed"},
    "outcome_counts": {"tr": "(parmak izleri: {parts})", "en": "(fingerprints: {parts})"},
    "outcome_count_under_review": {"tr": "{n} inceleniyor", "en": "{n} under review"},
    "outcome_count_removed": {"tr": "{n} kaldırıldı", "en": "{n} removed"},
    "outcome_count_not_removed": {"tr": "{n} kaldırılmadı", "en": "{n} not removed"},
    **{f"month_{number}": {"tr": tr, "en": en} for number, (tr, en) in enumerate(zip(
        ["Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz", "Ağustos", "Eylül", "Ekim", "Kasım",
         "Aralık"],
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
         "November", "December"]), start=1)},
    "add_title": {"tr": "İçerik ekleyin", "en": "Add content"},
    "add_lead": {
        "tr": "Başka fotoğraf ya da video eklemek için, başvurunuzu açarken yaptığınız gibi parmak izlerini bu "
              "cihazda çıkarın. Hiçbir şey gönderilmeden önce başvuru numaranızı ve PIN'inizi yeniden girersiniz.",
        "en": "To add more photos or videos, fingerprint them on this device, as when you opened the case. "
              "Before anything is sent, you enter your case number and PIN again.",
    },
    "add_photos_button": {"tr": "Fotoğraf ya da video ekleyin", "en": "Add photos or videos"},
    "add_paste_lead": {
        "tr": "Parmak izlerini zaten hesapladıysanız (ör. pyhash ile), her satıra bir tane yapıştırın: tür ve değer.",
        "en": "If you already have fingerprints (e.g. from pyhash), paste one per line: type and value.",
    },
    "add_button": {"tr": "Ekle", "en": "Add"},
    "withdraw_title": {"tr": "Başvuruyu geri çekin", "en": "Withdraw the case"},
    "withdraw_lead": {
        "tr": "Geri çekerseniz platformlara bu parmak izlerini silmeleri söylenir. Bu geri alınamaz.",
        "en": "If you withdraw, platforms are told to delete these fingerprints. This cannot be undone.",
    },
    "withdraw_confirm": {"tr": "Geri çekmek istediğimi onaylıyorum", "en": "I confirm I want to withdraw"},
    "withdraw_button": {"tr": "Geri çek", "en": "Withdraw"},
    "withdrawn_done": {"tr": "Başvurunuz geri çekildi.", "en": "Your case is withdrawn."},
    "added_done": {"tr": "{added} yeni parmak izi eklendi.", "en": "{added} new fingerprints added."},
    # No-break spaces inside the numbers: a phone number is not split across lines.
    "support": {"tr": "Destek: TKDF acil hattı 0212\u00a0656\u00a096\u00a096",
                "en": "Support: TKDF emergency line +90\u00a0212\u00a0656\u00a096\u00a096"},
    "error_title": {"tr": "Bir sorun oluştu", "en": "Something went wrong"},
    "not_found": {"tr": "Bu sayfa bulunamadı.", "en": "This page was not found."},
    "back_home": {"tr": "Ana sayfaya dön", "en": "Back to the start"},
    # API error codes, as a person should read them
    "err_case_or_pin_wrong": {
        "tr": "Bu başvuru numarası ve PIN ile bir başvuru bulunamadı. İkisini de kontrol edip tekrar deneyin.",
        "en": "No case matches this case number and PIN. Check both and try again.",
    },
    "err_locked": {
        "tr": "Bu başvuru numarası için çok fazla yanlış PIN girildi. Yaklaşık {minutes} dakika sonra tekrar deneyin.",
        "en": "Too many wrong PINs for this case number. Try again in about {minutes} minutes.",
    },
    "err_rate_limited": {"tr": "Çok fazla istek. Biraz bekleyip tekrar deneyin.",
                         "en": "Too many requests. Wait a moment and try again."},
    "err_case_withdrawn": {"tr": "Bu başvuru geri çekildi; yeni içerik için yeni bir başvuru başlatın.",
                           "en": "This case is withdrawn; start a new case to protect more images."},
    "err_low_quality": {
        "tr": "Bu görüntüde tanınması için yeterli ayrıntı yok. Daha net bir kopyasını deneyin.",
        "en": "This image has too little detail to be recognised. Try a clearer copy of it.",
    },
    "err_invalid_field": {"tr": "Girdiğiniz bilgiler geçersiz: {detail}", "en": "Something you entered is not valid: {detail}"},
    "err_case_full": {"tr": "Bu başvuru dolu; yeni bir başvuru başlatın.", "en": "This case is full; start a new case."},
    "err_other": {"tr": "İsteğiniz işlenemedi. Tekrar deneyin.", "en": "Your request could not be handled. Try again."},
    # --- the landing page -----------------------------------------------------------------------
    "landing_how_title": {"tr": "Nasıl çalışır", "en": "How it works"},
    "landing_how_1": {"tr": "Korumak istediğiniz fotoğrafları ve videoları seçersiniz.",
                      "en": "You choose the photos and videos you want to protect."},
    "landing_how_2": {
        "tr": "Tarayıcınız her birinin parmak izini (hash) hesaplar: görüntüyü tanımaya yarayan ama "
              "görüntüye geri çevrilemeyen kısa bir kod.",
        "en": "Your browser computes a fingerprint (hash) of each one: a short code that identifies the "
              "image but cannot be turned back into it.",
    },
    "landing_how_3": {
        "tr": "Yalnızca parmak izlerini gönderirsiniz. Katılımcı platformlar yüklenen içerikleri bunlarla "
              "karşılaştırır ve eşleşen görüntüleri engelleyebilir.",
        "en": "You send only the fingerprints. Participating platforms compare uploads against them and "
              "can block matching images.",
    },
    "landing_how_4": {
        "tr": "Bir başvuru numarası ve PIN alırsınız: bunlarla başvurunuzu izleyebilir, içerik ekleyebilir "
              "ya da başvuruyu geri çekebilirsiniz.",
        "en": "You get a case number and a PIN: with them you can follow your case, add more, or withdraw it.",
    },
    "landing_never_title": {"tr": "Asla olmayacak olanlar", "en": "What never happens"},
    "landing_never_1": {"tr": "Fotoğraflarınız ve videolarınız cihazınızdan çıkmaz. Kimse onları görmez, biz de görmeyiz.",
                        "en": "Your photos and videos never leave your device. Nobody sees them, not even us."},
    "landing_never_2": {"tr": "Adınızı, telefon numaranızı ya da e-postanızı sormayız; hesap açmanız gerekmez.",
                        "en": "We never ask for your name, phone number or e-mail; there is no account."},
    "landing_never_3": {"tr": "IP adresiniz kaydedilmez.", "en": "Your IP address is not stored."},
    "landing_start": {"tr": "Başlayın", "en": "Start"},
    # --- the person's flow (/start); every flow_* string also reaches the page's script -----------
    "flow_title": {"tr": "Görüntülerinizi koruyun", "en": "Protect your images"},
    "flow_needs_js": {
        "tr": "Bu bölüm için JavaScript gerekiyor: parmak izleri tarayıcınızda, JavaScript ile hesaplanır. "
              "Tarayıcınızın ayarlarından JavaScript'i açıp bu sayfayı yenileyin.",
        "en": "This part needs JavaScript: the fingerprints are computed in your browser, with JavaScript. "
              "Turn JavaScript on in your browser's settings and reload this page.",
    },
    "flow_needs_js_case": {
        "tr": "Başvuru numaranız ve PIN'iniz varsa başvurunuzu JavaScript olmadan da görebilirsiniz.",
        "en": "If you already have a case number and PIN, you can see your case without JavaScript.",
    },
    "flow_step": {"tr": "Adım {n} / 4", "en": "Step {n} of 4"},
    "flow_back": {"tr": "Geri", "en": "Back"},
    "flow_lang_name": {"tr": "Türkçe", "en": "English"},
    # eligibility
    "flow_elig_title": {"tr": "Başlamadan önce", "en": "Before you start"},
    "flow_elig_lead": {
        "tr": "Bu hizmet, mahrem görüntüleri izinsiz paylaşılan ya da paylaşılmasından korkan yetişkinler içindir. "
              "Lütfen aşağıdakileri onaylayın.",
        "en": "This service is for adults whose intimate images have been shared without their consent, or "
              "who fear they will be. Please confirm the following.",
    },
    "flow_elig_age_legend": {"tr": "Yaşınız", "en": "Your age"},
    "flow_elig_adult": {
        "tr": "18 yaşında ya da daha büyüğüm ve bu fotoğrafların ve videoların hepsinde 18 yaşında ya da daha büyüktüm.",
        "en": "I am 18 or older, and I was 18 or older in all of these photos and videos.",
    },
    "flow_elig_minor": {"tr": "18 yaşından küçüğüm ya da bazılarında 18 yaşından küçüktüm.",
                        "en": "I am under 18, or I was under 18 in some of them."},
    "flow_elig_about_legend": {"tr": "Görüntüler", "en": "The images"},
    "flow_elig_in_images": {"tr": "Bu fotoğraflarda ve videolarda görünen kişi benim.",
                            "en": "I am the person in these photos and videos."},
    "flow_elig_intimate": {"tr": "Bunlar mahrem görüntüler (çıplak, yarı çıplak ya da cinsel içerikli).",
                           "en": "They are intimate (nude, semi-nude or sexual)."},
    "flow_elig_confirm": {"tr": "Onaylıyorum, devam et", "en": "Confirm and continue"},
    "flow_elig_need_age": {"tr": "Lütfen yaşınızla ilgili seçeneklerden birini seçin.",
                           "en": "Please choose one of the age options."},
    "flow_elig_need_self": {
        "tr": "Başvuruyu yalnızca görüntülerdeki kişi başlatabilir. Başka birine yardım ediyorsanız, başvuruyu "
              "birlikte, onun kendi cihazında yapabilirsiniz; destek hattı da yardımcı olabilir.",
        "en": "Only the person in the images can start a case. If you are helping someone, they can do it on "
              "their own device with you beside them; the support line can help too.",
    },
    "flow_elig_need_intimate": {
        "tr": "Bu hizmet yalnızca mahrem görüntüler içindir. Başka görüntüleri, göründükleri platforma bildirin.",
        "en": "This service is only for intimate images. Report other images to the platform where they appear.",
    },
    # under 18
    "flow_minor_title": {"tr": "18 yaşından önce çekilen görüntüler için", "en": "For images from before you were 18"},
    "flow_minor_lead": {
        "tr": "Bu hizmet bu görüntüler için doğru yer değil. NCMEC'in ücretsiz Take It Down hizmeti aynı işi yapar: "
              "görüntüleriniz cihazınızdan çıkmadan parmak izlerini oluşturur ve platformların onları bulup "
              "kaldırmasına yardım eder.",
        "en": "This service is not the right place for these images. NCMEC's free Take It Down service does the "
              "same job: it makes their fingerprints without the images leaving your device, and helps platforms "
              "find and remove them.",
    },
    "flow_minor_link": {"tr": "Take It Down'a gidin", "en": "Go to Take It Down"},
    "flow_minor_note": {"tr": "Bağlantı takeitdown.ncmec.org adresini açar. Biz oraya hiçbir şey göndermeyiz.",
                        "en": "The link opens takeitdown.ncmec.org. We send nothing there."},
    "flow_minor_support": {
        "tr": "Bu sizin suçunuz değil. Biriyle konuşmak isterseniz TKDF acil hattını arayın: 0212\u00a0656\u00a096\u00a096. "
              "Hemen tehlikedeyseniz 112'yi arayın.",
        "en": "This is not your fault. If you want to talk to someone, call the TKDF emergency line: "
              "+90\u00a0212\u00a0656\u00a096\u00a096. If you are in danger right now, call 112.",
    },
    # choosing and fingerprinting files
    "flow_files_title": {"tr": "Fotoğraflarınızı ve videolarınızı seçin", "en": "Choose your photos and videos"},
    "flow_files_lead": {
        "tr": "Korumak istediğiniz her fotoğrafı ve videoyu seçin. Bu cihazdan çıkmazlar: parmak izleri burada, "
              "tarayıcınızda hesaplanır.",
        "en": "Choose every photo and video you want to protect. They do not leave this device: their "
              "fingerprints are computed here, in your browser.",
    },
    "flow_files_choose": {"tr": "Fotoğraf ya da video seçin", "en": "Choose photos or videos"},
    "flow_files_drop": {"tr": "ya da buraya sürükleyip bırakın", "en": "or drag and drop them here"},
    "flow_files_next": {"tr": "Devam et", "en": "Continue"},
    "flow_files_cancel": {"tr": "Parmak izi çıkarmayı durdur", "en": "Stop fingerprinting"},
    "flow_files_remove": {"tr": "Kaldır", "en": "Remove"},
    "flow_files_remove_label": {"tr": "{name} dosyasını kaldır", "en": "Remove {name}"},
    "flow_files_progress_label": {"tr": "{name} ilerlemesi", "en": "Progress of {name}"},
    "flow_files_list_label": {"tr": "Seçtiğiniz dosyalar", "en": "Files you chose"},
    "flow_file_queued": {"tr": "Sırada", "en": "Waiting"},
    "flow_file_decoding": {"tr": "Açılıyor…", "en": "Opening…"},
    "flow_file_hashing": {"tr": "Parmak izi çıkarılıyor…", "en": "Fingerprinting…"},
    "flow_file_done": {"tr": "Hazır", "en": "Ready"},
    "flow_file_not_sent": {"tr": "Gönderilmeyecek", "en": "Will not be sent"},
    "flow_file_video": {"tr": "Video", "en": "Video"},
    "flow_file_low_quality": {
        "tr": "Bu fotoğrafta güvenilir biçimde tanınması için yeterli ayrıntı yok (örneğin neredeyse tek renk), "
              "bu yüzden gönderilmeyecek. Daha net bir kopyası varsa onu ekleyin.",
        "en": "This photo has too little detail to be recognised reliably (for example, it is almost one colour), "
              "so it will not be sent. If you have a clearer copy of it, add that.",
    },
    "flow_engine_loading": {"tr": "Parmak izi aracı hazırlanıyor…", "en": "Getting the fingerprinting tool ready…"},
    "flow_engine_failed": {
        "tr": "Bu tarayıcı parmak izi aracını başlatamadı. Tarayıcınızı güncelleyin ya da başka bir tarayıcı deneyin "
              "(Chrome, Firefox, Safari). Dosyalarınız hiçbir yere gönderilmedi.",
        "en": "This browser could not start the fingerprinting tool. Update your browser or try another one "
              "(Chrome, Firefox, Safari). Your files were not sent anywhere.",
    },
    "flow_summary_working": {"tr": "{total} dosyadan {done} tanesi işlendi…", "en": "{done} of {total} files done…"},
    "flow_summary_done": {"tr": "Bütün dosyalar işlendi: gönderilmeye hazır {count} parmak izi var.",
                          "en": "All files are done: {count} fingerprints are ready to send."},
    "flow_summary_nothing": {"tr": "Henüz gönderilebilecek bir parmak izi yok. Bir fotoğraf ya da video ekleyin.",
                             "en": "There is no fingerprint to send yet. Add a photo or a video."},
    "flow_summary_too_many": {
        "tr": "Bir başvuruda en fazla {max} parmak izi gönderilebilir; şu an {count} tane var. Bazı dosyaları "
              "kaldırın ve geri kalanlar için ikinci bir başvuru başlatın.",
        "en": "A case can take at most {max} fingerprints at once; there are {count}. Remove some files and "
              "start a second case for the rest.",
    },
    "flow_cancelled": {"tr": "Durduruldu: bitmemiş {count} dosya listeden çıkarıldı.",
                       "en": "Stopped: {count} unfinished files were taken off the list."},
    "flow_removed": {"tr": "{name} kaldırıldı.", "en": "{name} removed."},
    # consent and sending
    "flow_consent_title": {"tr": "Neyin gönderileceğini kontrol edin", "en": "Check what will be sent"},
    "flow_consent_sent_title": {"tr": "Gönderilecekler", "en": "What is sent"},
    "flow_consent_sent_lead": {"tr": "Yalnızca bu parmak izleri ve altındaki iki bilgi:",
                               "en": "Only these fingerprints and the two details below them:"},
    "flow_hash_type_pdq": {"tr": "Fotoğraf parmak izi (PDQ)", "en": "Photo fingerprint (PDQ)"},
    "flow_hash_type_md5": {"tr": "Dosya parmak izi (MD5)", "en": "File fingerprint (MD5)"},
    "flow_hash_type_vpdq": {"tr": "Video parmak izi (vPDQ)", "en": "Video fingerprint (vPDQ)"},
    "flow_consent_language": {"tr": "Sayfanın dili", "en": "Language of this page"},
    "flow_consent_ref": {"tr": "Sizi yönlendiren destek hattının kodu", "en": "Code of the helpline that sent you"},
    "flow_consent_no_ref": {"tr": "yok", "en": "none"},
    "flow_consent_exact": {"tr": "Gönderilecek mesajın tam hâli", "en": "The exact message that will be sent"},
    "flow_consent_key_note": {
        "tr": "idempotency_key rastgele bir koddur: bağlantı koparsa ikinci bir başvuru açılmasını önler. "
              "Sizinle ilgili hiçbir şey içermez.",
        "en": "idempotency_key is a random code: it stops a second case being opened if the connection drops. "
              "It says nothing about you.",
    },
    "flow_consent_not_title": {"tr": "Asla gönderilmeyenler", "en": "What is never sent"},
    "flow_consent_not_1": {"tr": "Fotoğraflarınız ve videolarınız ya da onların herhangi bir parçası",
                           "en": "Your photos and videos, or any part of them"},
    "flow_consent_not_2": {"tr": "Dosya adları, küçük resimler, dosyalarda saklı tarih ve konum bilgileri",
                           "en": "File names, thumbnails, and the dates and places stored in the files"},
    "flow_consent_not_3": {"tr": "Adınız, telefon numaranız, e-postanız: bunları hiç sormuyoruz",
                           "en": "Your name, phone number or e-mail: we never ask for them"},
    "flow_consent_ip": {"tr": "Sunucumuz IP adresinizi kaydetmez.", "en": "Our server does not store your IP address."},
    "flow_consent_use": {
        "tr": "Parmak izleri katılımcı platformlarla paylaşılır; platformlar yüklenen içerikleri bunlarla "
              "karşılaştırır. Başvurunuzu istediğiniz zaman geri çekebilirsiniz.",
        "en": "The fingerprints are shared with participating platforms, which compare uploads against them. "
              "You can withdraw your case at any time.",
    },
    "flow_consent_confirm": {
        "tr": "Bu parmak izlerinin gönderilmesini ve katılımcı platformlarla paylaşılmasını kabul ediyorum.",
        "en": "I agree to send these fingerprints and to them being shared with participating platforms.",
    },
    "flow_consent_need": {"tr": "Göndermek için önce kutuyu işaretleyin.", "en": "Tick the box first to send."},
    "flow_submit": {"tr": "Gönder ve başvuru numaramı al", "en": "Send and get my case number"},
    "flow_submitting": {"tr": "Gönderiliyor…", "en": "Sending…"},
    "flow_retry": {"tr": "Yeniden dene", "en": "Try again"},
    "flow_err_network": {
        "tr": "Bağlantı, yanıt gelmeden koptu. Başvurunuz açılmış olabilir: Yeniden dene'ye basın; aynı başvuru "
              "size gösterilir, ikinci bir başvuru açılmaz.",
        "en": "The connection dropped before the answer arrived. Your case may already be open: press Try again "
              "and you will get that same case, not a second one.",
    },
    "flow_err_rate_limited": {"tr": "Şu anda çok fazla istek var. Bir dakika bekleyip Yeniden dene'ye basın.",
                              "en": "There are too many requests right now. Wait a minute, then press Try again."},
    "flow_err_server": {
        "tr": "Sunucumuz başvurunuzu şu anda alamadı. Birkaç dakika sonra Yeniden dene'ye basın. Sorun sürerse "
              "destek hattını arayın.",
        "en": "Our server could not take your case just now. Press Try again in a few minutes. If it keeps "
              "happening, call the support line.",
    },
    "flow_err_rejected": {
        "tr": "Sunucumuz bu parmak izlerini kabul etmedi ({detail}). Sayfayı yenileyip dosyaları yeniden seçin; "
              "sorun sürerse destek hattını arayın.",
        "en": "Our server did not accept these fingerprints ({detail}). Reload this page and choose the files "
              "again; if it keeps happening, call the support line.",
    },
    # the case number and PIN
    "flow_result_title": {"tr": "Başvuru numaranız ve PIN'iniz", "en": "Your case number and PIN"},
    "flow_result_warning": {
        "tr": "Bunları şimdi kaydedin. Yalnızca bu kez gösteriliyorlar ve kaybolurlarsa kurtarılamazlar: "
              "kimse, biz bile, onları sizin için bulamayız.",
        "en": "Save them now. They are shown only this once and cannot be recovered if lost: nobody, not even "
              "us, can look them up for you.",
    },
    "flow_result_copy_case": {"tr": "Başvuru numarasını kopyala", "en": "Copy the case number"},
    "flow_result_copy_pin": {"tr": "PIN'i kopyala", "en": "Copy the PIN"},
    "flow_result_copied": {"tr": "Kopyalandı.", "en": "Copied."},
    "flow_result_copy_failed": {"tr": "Kopyalanamadı; lütfen bir yere yazın.",
                                "en": "Could not copy; please write it down."},
    "flow_result_download": {"tr": "Metin dosyası olarak indir", "en": "Download as a text file"},
    "flow_result_print": {"tr": "Yazdır", "en": "Print"},
    "flow_result_keep_safe": {
        "tr": "Bu ikisini bilen herkes başvurunuzu görebilir ya da geri çekebilir: yalnızca sizin bulabileceğiniz "
              "bir yerde saklayın.",
        "en": "Anyone who has both can see or withdraw your case: keep them where only you can find them.",
    },
    "flow_result_how_to_use": {
        "tr": "Başvurunuzu görmek, içerik eklemek ya da geri çekmek için {url} adresine gidip ikisini de girin.",
        "en": "To see your case, add more or withdraw it, go to {url} and enter both.",
    },
    "flow_result_saved": {"tr": "Kaydettim, devam et", "en": "I have saved them, continue"},
    "flow_textfile_name": {"tr": "basvuru-{case_number}.txt", "en": "case-{case_number}.txt"},
    # the end
    "flow_done_title": {"tr": "Başvurunuz açıldı", "en": "Your case is open"},
    "flow_done_lead": {
        "tr": "Parmak izleri katılımcı platformlara iletilir. Platformlar yüklenen içerikleri bunlarla karşılaştırır "
              "ve eşleşen görüntüleri engelleyebilir ya da kaldırabilir.",
        "en": "The fingerprints go to participating platforms. They compare uploads against them and can block "
              "or remove matching images.",
    },
    "flow_done_case_page_lead": {
        "tr": "Başvuru sayfanızda, numaranız ve PIN'inizle başvurunuzun durumunu görebilir, içerik ekleyebilir "
              "ya da başvuruyu geri çekebilirsiniz.",
        "en": "On your case page, with your case number and PIN, you can see your case's status, add more, or "
              "withdraw it.",
    },
    "flow_done_case_page": {"tr": "Başvuru sayfanıza gidin", "en": "Go to your case page"},
    "flow_done_device": {
        "tr": "Bu cihazı başkasıyla paylaşıyorsanız tarayıcı geçmişinizi silmeyi düşünün.",
        "en": "If you share this device with someone, consider clearing your browser history.",
    },
    # adding to an existing case (/start?mode=add, from the case page)
    "flow_add_mode_note": {
        "tr": "Mevcut başvurunuza fotoğraf ya da video ekliyorsunuz. Hiçbir şey gönderilmeden önce başvuru "
              "numaranızı ve PIN'inizi gireceksiniz.",
        "en": "You are adding photos or videos to a case you already have. Before anything is sent, you will "
              "enter its case number and PIN.",
    },
    "flow_add_consent_title": {"tr": "Başvurunuza neyin ekleneceğini kontrol edin",
                               "en": "Check what will be added to your case"},
    "flow_add_consent_sent_lead": {
        "tr": "Yalnızca bu parmak izleri ve hangi başvuruya ait olduklarını sunucumuzun bilmesi için aşağıda "
              "gireceğiniz başvuru numarası ile PIN:",
        "en": "Only these fingerprints, and the case number and PIN you enter below, so that our server knows "
              "which case they belong to:",
    },
    "flow_add_exact_note": {
        "tr": "PIN'iniz girdiğiniz gibi gönderilir; ekranınıza bakan biri okuyamasın diye burada noktalarla "
              "gösteriliyor.",
        "en": "Your PIN is sent as you type it; it is shown as dots here so that nobody looking at your screen "
              "can read it.",
    },
    "flow_add_credentials_legend": {"tr": "Başvurunuz", "en": "Your case"},
    "flow_add_credentials_hint": {
        "tr": "Başvurunuzu açtığınızda aldığınız numara ve PIN. Büyük ya da küçük harfle, tireli ya da tiresiz "
              "yazabilir, yapıştırabilirsiniz.",
        "en": "The number and PIN you got when you opened the case. Capital or small letters, with or without "
              "hyphens: both work, and you can paste them.",
    },
    "flow_add_consent_confirm": {
        "tr": "Bu parmak izlerinin başvuruma eklenmesini ve katılımcı platformlarla paylaşılmasını kabul ediyorum.",
        "en": "I agree to add these fingerprints to my case and to them being shared with participating platforms.",
    },
    "flow_add_submit": {"tr": "Başvuruma ekle", "en": "Add to my case"},
    "flow_add_need_case_number": {
        "tr": "Başvuru numaranızı girin: dört grup hâlinde 16 harf ve rakam (XXXX-XXXX-XXXX-XXXX; tire ve boşluk "
              "isteğe bağlı). Kaydettiğiniz numarayla karşılaştırın.",
        "en": "Enter your case number: 16 letters and digits in four groups (XXXX-XXXX-XXXX-XXXX; hyphens and "
              "spaces are optional). Compare it with the number you saved.",
    },
    "flow_add_need_pin": {
        "tr": "PIN'inizi girin: iki grup hâlinde 10 harf ve rakam (XXXXX-XXXXX; tire ve boşluk isteğe bağlı). "
              "Kaydettiğiniz PIN'le karşılaştırın.",
        "en": "Enter your PIN: 10 letters and digits in two groups (XXXXX-XXXXX; hyphens and spaces are "
              "optional). Compare it with the PIN you saved.",
    },
    # {when} is a relative time in the page's language: "in 60 minutes" / "60 dakika sonra"
    "flow_add_err_locked": {
        "tr": "Bu başvuru numarası için çok fazla yanlış PIN girildi; bu yüzden şimdilik kilitli ve hiçbir şey "
              "eklenmedi. {when} yeniden deneyin.",
        "en": "Too many wrong PINs were entered for this case number, so it is locked for now and nothing was "
              "added. Try again {when}.",
    },
    "flow_add_err_withdrawn": {
        "tr": "Bu başvuru geri çekildi; yeni parmak izi alamaz ve hiçbir şey eklenmedi. Bu fotoğrafları ve "
              "videoları korumak için yeni bir başvuru başlatın: orada onları yeniden seçer, yeni bir başvuru "
              "numarası ve PIN alırsınız.",
        "en": "This case was withdrawn, so it cannot take new fingerprints and nothing was added. To protect "
              "these photos and videos, start a new case: you choose them again there and get a new case number "
              "and PIN.",
    },
    "flow_add_err_full": {
        "tr": "Bu başvuru dolu: bir başvurunun alabileceği en fazla parmak izine ulaştı ve hiçbir şey eklenmedi. "
              "Bu fotoğraflar ve videolar için yeni bir başvuru başlatın; orada onları yeniden seçersiniz.",
        "en": "This case is full: it holds the most fingerprints a case can, and nothing was added. Start a new "
              "case for these photos and videos; you choose them again there.",
    },
    "flow_add_err_network": {
        "tr": "Bağlantı, yanıt gelmeden koptu. Parmak izleri başvurunuza eklenmiş olabilir: Yeniden dene'ye "
              "basın. Hiçbir şey iki kez eklenmez.",
        "en": "The connection dropped before the answer arrived. The fingerprints may already be in your case: "
              "press Try again. Nothing is added twice.",
    },
    "flow_add_err_server": {
        "tr": "Sunucumuz bunları şu anda ekleyemedi. Birkaç dakika sonra Yeniden dene'ye basın. Sorun sürerse "
              "destek hattını arayın.",
        "en": "Our server could not add them just now. Press Try again in a few minutes. If it keeps happening, "
              "call the support line.",
    },
    "flow_add_start_new": {"tr": "Yeni bir başvuru başlatın", "en": "Start a new case"},
    "flow_added_title": {"tr": "Başvurunuza eklendi", "en": "Added to your case"},
    "flow_added_new_label": {"tr": "Eklenen yeni parmak izleri", "en": "New fingerprints added"},
    "flow_added_already_label": {"tr": "Zaten başvurunuzda olanlar (ikinci kez eklenmedi)",
                                 "en": "Already in your case (not added twice)"},
    "flow_added_total_label": {"tr": "Başvurunuzdaki parmak izleri", "en": "Fingerprints in your case now"},
    "flow_added_lead": {
        "tr": "Yeni parmak izleri başvurunuzun geri kalanıyla birlikte katılımcı platformlara iletilir. Başvuru "
              "numaranız ve PIN'iniz değişmez.",
        "en": "The new fingerprints go to participating platforms with the rest of your case. Your case number "
              "and PIN stay the same.",
    },
    "flow_added_case_page": {"tr": "Başvurunuza dönün", "en": "Back to your case"},
}

# The strings the flow's script (web/src/flow-page.js) needs, handed to it in the page as JSON.
SCRIPT_KEYS = ("case_number", "pin", "support", "site_name", "err_case_or_pin_wrong")


def script_texts(language: str) -> dict[str, str]:
    """Every flow_* string (and a few shared ones) in `language`, for the flow page's script."""
    return {key: text(key, language) for key in TEXT if key.startswith("flow_") or key in SCRIPT_KEYS}


def language_of(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, language: str, **values: object) -> str:
    template = TEXT[key][language]
    return template.format(**values) if values else template
